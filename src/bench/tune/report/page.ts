import { escapeXml } from './svg.ts';

/** The head of every report page: inline CSS only, nothing fetched when the file is opened. */
export function pageHead(title: string): string {
  return (
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:960px;color:#111;padding:0 12px}
table{border-collapse:collapse;margin:8px 0 16px;width:100%}th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}
tr.better td{font-weight:600;background:#ecfdf5}tr.default td{background:#f1f5f9}tr.worse td{color:#6b7280}
pre.snippet{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:6px;overflow:auto}
svg.chart{width:100%;height:auto;margin:12px 0;background:#fff;border:1px solid #eee}
.title{font-weight:600;font-size:14px}.label,.value,.tick,.legend{font-size:11px}.axis{font-size:12px}
.grid{stroke:#eee}.legend-notes{font-size:13px;color:#333}.legend-notes ` +
    'dt{font-weight:600;float:left;clear:left;width:190px}.legend-notes dd{margin:0 0 4px ' +
    `200px}.empty{color:#666;font-style:italic}.warnings{color:#92400e}
</style></head><body>`
  );
}
