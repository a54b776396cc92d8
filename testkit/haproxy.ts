/** An haproxy configuration for socktune servers behind one TCP frontend; docs/scale-out.md shows the same. */
export function haproxyConfig(options: { listen: string; backends: string[]; balance?: string }): string {
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    'frontend socktune',
    `  bind ${options.listen}`,
    '  default_backend servers',
    'backend servers',
    `  balance ${options.balance ?? 'roundrobin'}`,
    ...options.backends.map((address, index) => `  server s${index + 1} ${address}`),
    '',
  ].join('\n');
}
