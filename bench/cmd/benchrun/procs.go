package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process the run started and owns.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// pinning says which CPUs processes run on; an empty taskset disables it.
type pinning struct {
	taskset  string
	proxyCPU string
	loadCPU  string
}

// command returns cmd pinned to cpu when pinning is enabled.
func (p pinning) command(cpu, bin string, args ...string) *exec.Cmd {
	if p.taskset == "" || cpu == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command(p.taskset, append([]string{"-c", cpu, bin}, args...)...)
}

// startProc starts cmd with its output in dir/<name>.log. taskset execs the
// program, so the pid is the program's.
func startProc(dir, name string, cmd *exec.Cmd, env ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last lines of the process log.
func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM, then SIGKILL after a grace period.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// freePort returns a loopback port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// errNotReady is returned when a started process never became ready.
var errNotReady = errors.New("not ready")

// benchRoots trusts the TLS scenarios' certificate (nil: the system roots).
var benchRoots *x509.CertPool

// waitHTTP polls url (with the headers) until it answers want, the process
// exits or timeout passes.
func waitHTTP(p *proc, url string, hdr map[string]string, want int, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: benchRoots}}}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(20))
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	msg := fmt.Sprintf("%s: %v after %v (last: %s)", url, errNotReady, timeout, last)
	if p != nil {
		msg += "\n" + p.tail(20)
	}
	return errors.New(msg)
}

// waitTCP polls addr until it accepts a connection.
func waitTCP(p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(20))
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: %w after %v\n%s", addr, errNotReady, timeout, p.tail(20))
}

// processTree returns pid and its descendants (nginx: master and workers).
func processTree(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := ppid(n); pp > 0 {
			children[pp] = append(children[pp], n)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields returns the fields of /proc/pid/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func ppid(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds returns the user+system CPU time of the processes.
func cpuSeconds(pids []int) float64 {
	var ticks uint64
	for _, pid := range pids {
		f := statFields(pid)
		// utime and stime are fields 14 and 15 of stat, 12 and 13 here.
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseUint(f[11], 10, 64)
		s, _ := strconv.ParseUint(f[12], 10, 64)
		ticks += u + s
	}
	return float64(ticks) / clockTicks
}

// rssBytes returns the summed VmRSS of the processes.
func rssBytes(pids []int) uint64 {
	var total uint64
	for _, pid := range pids {
		total += statusKB(pid, "VmRSS:") * 1024
	}
	return total
}

func statusKB(pid int, field string) uint64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field) {
			v := strings.Fields(strings.TrimPrefix(line, field))
			if len(v) > 0 {
				n, _ := strconv.ParseUint(v[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// cpuTimes is one reading of /proc/stat: busy, total and interrupt
// (irq + softirq) jiffies per CPU.
type cpuTimes map[string][3]uint64

func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	out := cpuTimes{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var total, idle, irq uint64
		for i, s := range f[1:] {
			n, _ := strconv.ParseUint(s, 10, 64)
			total += n
			switch i {
			case 3, 4: // idle, iowait
				idle += n
			case 5, 6: // irq, softirq
				irq += n
			}
		}
		out[strings.TrimPrefix(f[0], "cpu")] = [3]uint64{total - idle, total, irq}
	}
	return out
}

// busyPercent returns how busy cpu was between a and b, and how much of
// that was interrupt handling (on loopback, much of the network stack runs
// as softirq on the sender's CPU, charged to no process).
func busyPercent(a, b cpuTimes, cpu string) (busy, irq float64) {
	x, ok1 := a[cpu]
	y, ok2 := b[cpu]
	if !ok1 || !ok2 || y[1] <= x[1] {
		return 0, 0
	}
	total := float64(y[1] - x[1])
	return 100 * float64(y[0]-x[0]) / total, 100 * float64(y[2]-x[2]) / total
}
