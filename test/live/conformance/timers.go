// The conformance checks of a Go program (README.md beside it): time.Sleep, time.After,
// time.Ticker, context.WithTimeout and net.Conn deadlines, each printing one JSON line of what it
// asked and what it got, measured with the program's own clock (time.Since, Go's monotonic
// reading). The Go runtime reads its clock through the vDSO or raw system calls and runs every
// timer itself from those readings, so Go programs are virtual exactly when their clock is:
// clockNs (time.Now, epoch ns) tells whether it was.
//
// Standard library only; the test builds it with CGO_ENABLED=0 (static) and =1 (cgo, linked with
// glibc).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"
)

type result struct {
	Call    string `json:"call"`
	AskedNs int64  `json:"askedNs"`
	GotNs   int64  `json:"gotNs"`
	Waits   int    `json:"waits"`
	// The Go runtime waits for its timers in epoll_pwait with millisecond timeouts (netpoll, a
	// remainder under 1 ms waits 1 ms): natively a timer may fire up to 1 ms late.
	ResolutionNs int64 `json:"resolutionNs"`
	ClockNs int64  `json:"clockNs"`
	Ret     string `json:"ret,omitempty"`
	Error   string `json:"error,omitempty"`
}

func emit(r result) {
	r.ClockNs = time.Now().UnixNano()
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}

// check runs n waits of d by wait, which returns "" when it ended by its timeout, else how it ended.
func check(call string, d time.Duration, n int, waits int, wait func(d time.Duration, n int) string) {
	t0 := time.Now()
	ret := wait(d, n)
	emit(result{Call: call, AskedNs: int64(n) * d.Nanoseconds(), GotNs: time.Since(t0).Nanoseconds(), Waits: waits, ResolutionNs: time.Millisecond.Nanoseconds(), Ret: ret})
}

func sleeps(d time.Duration, n int) string {
	for range n {
		time.Sleep(d)
	}
	return ""
}

func after(d time.Duration, _ int) string {
	<-time.After(d)
	return ""
}

func ticker(d time.Duration, n int) string {
	t := time.NewTicker(d)
	defer t.Stop()
	for range n {
		<-t.C
	}
	return ""
}

func withTimeout(d time.Duration, _ int) string {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	<-ctx.Done()
	if ctx.Err() != context.DeadlineExceeded {
		return fmt.Sprint(ctx.Err())
	}
	return ""
}

// pair is a TCP connection to a local listener whose accepted end neither reads nor writes.
func pair() (net.Conn, net.Conn, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	s, err := l.Accept()
	return c, s, err
}

// timedOut is "" for a deadline error, else what the call returned.
func timedOut(n int, err error) string {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return ""
	}
	return fmt.Sprintf("returned %d, %v", n, err)
}

func readDeadline(c net.Conn) func(time.Duration, int) string {
	return func(d time.Duration, _ int) string {
		c.SetReadDeadline(time.Now().Add(d))
		return timedOut(c.Read(make([]byte, 16)))
	}
}

// writeDeadline writes until the socket buffers are full and the deadline ends the write.
func writeDeadline(c net.Conn) func(time.Duration, int) string {
	return func(d time.Duration, _ int) string {
		c.SetWriteDeadline(time.Now().Add(d))
		buf := make([]byte, 1<<20)
		for {
			n, err := c.Write(buf)
			if err != nil {
				return timedOut(n, err)
			}
		}
	}
}

func main() {
	const ms = time.Millisecond
	check("time.Sleep", 100*ms, 1, 1, sleeps)
	check("time.Sleep x5", 30*ms, 5, 5, sleeps)
	check("time.After", 100*ms, 1, 1, after)
	check("time.Ticker x5", 30*ms, 5, 1, ticker)
	check("context.WithTimeout", 100*ms, 1, 1, withTimeout)
	c, s, err := pair()
	if err != nil {
		for _, call := range []string{"net.Conn.SetReadDeadline", "net.Conn.SetWriteDeadline"} {
			emit(result{Call: call, Error: err.Error()})
		}
		os.Exit(0)
	}
	defer s.Close()
	check("net.Conn.SetReadDeadline", 100*ms, 1, 1, readDeadline(c))
	check("net.Conn.SetWriteDeadline", 100*ms, 1, 1, writeDeadline(c))
}
