// Closed-loop request/response load generator in Go: the second, external client of bench/peers,
// to show when socktune's own client is the limit. Usage:
//   go-load-client -port P -conns C -depth D -size S -seconds T
// Prints one JSON line: {"requests":N,"seconds":T,"p50_us":..,"p99_us":..}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	port := flag.Int("port", 0, "server port")
	conns := flag.Int("conns", 1, "connections")
	depth := flag.Int("depth", 1, "requests in flight per connection")
	size := flag.Int("size", 64, "request and response bytes")
	seconds := flag.Float64("seconds", 2, "measured seconds")
	flag.Parse()

	deadline := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	var mutex sync.Mutex
	var latencies []float64
	var wait sync.WaitGroup
	for c := 0; c < *conns; c++ {
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		conn.(*net.TCPConn).SetNoDelay(true)
		wait.Add(1)
		go func(conn net.Conn) {
			defer wait.Done()
			defer conn.Close()
			request := make([]byte, *size)
			response := make([]byte, *size)
			starts := make(chan time.Time, *depth)
			local := make([]float64, 0, 1<<16)
			for i := 0; i < *depth; i++ {
				starts <- time.Now()
				conn.Write(request)
			}
			for time.Now().Before(deadline) {
				if _, err := io.ReadFull(conn, response); err != nil {
					break
				}
				local = append(local, float64(time.Since(<-starts).Microseconds()))
				starts <- time.Now()
				conn.Write(request)
			}
			mutex.Lock()
			latencies = append(latencies, local...)
			mutex.Unlock()
		}(conn)
	}
	wait.Wait()
	sort.Float64s(latencies)
	at := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[int(p*float64(len(latencies)-1))]
	}
	out, _ := json.Marshal(map[string]float64{"requests": float64(len(latencies)), "seconds": *seconds, "p50_us": at(0.5), "p99_us": at(0.99)})
	fmt.Println(string(out))
}
