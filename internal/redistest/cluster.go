package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Timing of the throwaway cluster and sentinels: short enough that a
// failover completes in a few seconds on a loaded machine.
const (
	// ClusterNodeTimeout is cluster-node-timeout: a master unreachable for
	// this long is flagged failing and its replica takes over.
	ClusterNodeTimeout = time.Second
	// SentinelDownAfter is down-after-milliseconds of the sentinels.
	SentinelDownAfter = time.Second
	// SentinelFailoverTimeout is failover-timeout of the sentinels.
	SentinelFailoverTimeout = 3 * time.Second
	// SentinelMasterSet is the name the sentinels monitor.
	SentinelMasterSet = "gatewayd"
)

// RequireClusterTools skips t when the programs a cluster or sentinel test
// needs are missing: redis-cli creates clusters. redis-server is required
// as for every Redis test (t fails with InstallHint) unless REDIS_ADDR is
// set, in which case t is skipped: these tests kill their own servers.
func RequireClusterTools(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("REDIS_ADDR") != "" {
			t.Skip("redis-server not found: cluster and sentinel tests start and kill their own servers, REDIS_ADDR cannot stand in")
		}
		t.Fatal(InstallHint)
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not found: it creates the test Redis Cluster (redis-cli --cluster create); install the redis-tools package")
	}
}

// KeySlot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key, or of its hash tag (the bytes between the first '{' and the next
// '}', when not empty), modulo 16384.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) & 16383)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the hash of
// Redis Cluster.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// newNode starts a redis-server owned by t (never the REDIS_ADDR server).
func newNode(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, port: FreePort(t), dir: t.TempDir()}
	s.addr = "127.0.0.1:" + strconv.Itoa(s.port)
	s.start(args)
	t.Cleanup(s.Kill)
	return s
}

// freePortExcept returns a free port other than those given.
func freePortExcept(t testing.TB, used ...int) int {
	for {
		p := FreePort(t)
		if !containsInt(used, p) {
			return p
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Cluster is a Redis Cluster of redis-server processes owned by a test,
// on loopback. Nodes are killed at the test's cleanup.
type Cluster struct {
	t     testing.TB
	nodes []*Server
}

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID       string
	Addr     string
	Master   bool
	Failed   bool
	MasterID string
	// Slots are the ranges [first, last] the node serves.
	Slots [][2]int
}

// Serves reports whether the node serves slot.
func (n ClusterNode) Serves(slot int) bool {
	for _, r := range n.Slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// StartCluster starts masters × (1 + replicas) nodes with
// cluster-enabled yes, creates the cluster with redis-cli --cluster create
// and waits until every slot is served and every replica is in sync.
//
// Nodes run with cluster-node-timeout 1s, cluster-replica-validity-factor
// 0 (a replica always takes over) and cluster-require-full-coverage no
// (the shards that are up keep serving while one fails over).
func StartCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	RequireClusterTools(t)
	c := &Cluster{t: t}
	n := masters * (1 + replicas)
	var used []int
	for range n {
		port := freePortExcept(t, used...)
		bus := freePortExcept(t, append(used, port)...)
		used = append(used, port, bus)
		s := &Server{t: t, port: port, dir: t.TempDir()}
		s.addr = "127.0.0.1:" + strconv.Itoa(port)
		s.start([]string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10),
			"--cluster-replica-validity-factor", "0",
			"--cluster-require-full-coverage", "no",
		})
		t.Cleanup(s.Kill)
		c.nodes = append(c.nodes, s)
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.WaitHealthy(masters, replicas, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// Addrs returns the address of every node, dead or alive (seed nodes).
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		out[i] = s.Addr()
	}
	return out
}

// Node returns the node listening on addr, or nil.
func (c *Cluster) Node(addr string) *Server {
	for _, s := range c.nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// alive returns the nodes whose process runs and is not paused.
func (c *Cluster) alive() []*Server {
	var out []*Server
	for _, s := range c.nodes {
		s.mu.Lock()
		up := s.cmd != nil && !s.paused
		s.mu.Unlock()
		if up {
			out = append(out, s)
		}
	}
	return out
}

// Nodes returns the cluster as a live node sees it.
func (c *Cluster) Nodes() ([]ClusterNode, error) {
	var lastErr error = errors.New("no node is running")
	for _, s := range c.alive() {
		out, err := s.Do("CLUSTER", "NODES")
		if err != nil {
			lastErr = err
			continue
		}
		return parseClusterNodes(out), nil
	}
	return nil, lastErr
}

func parseClusterNodes(out string) []ClusterNode {
	var nodes []ClusterNode
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		flags := "," + f[2] + ","
		n := ClusterNode{
			ID:       f[0],
			Addr:     addr,
			Master:   strings.Contains(flags, ",master,"),
			Failed:   strings.Contains(flags, ",fail,") || strings.Contains(flags, ",fail?,"),
			MasterID: f[3],
		}
		for _, sl := range f[8:] {
			if strings.HasPrefix(sl, "[") { // a slot being migrated
				continue
			}
			a, b, ok := strings.Cut(sl, "-")
			if !ok {
				b = a
			}
			lo, err1 := strconv.Atoi(a)
			hi, err2 := strconv.Atoi(b)
			if err1 == nil && err2 == nil {
				n.Slots = append(n.Slots, [2]int{lo, hi})
			}
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// Owner returns the running master that serves slot.
func (c *Cluster) Owner(slot int) (*Server, error) {
	nodes, err := c.Nodes()
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.Master && !n.Failed && n.Serves(slot) {
			if s := c.Node(n.Addr); s != nil {
				return s, nil
			}
		}
	}
	return nil, fmt.Errorf("no live master serves slot %d", slot)
}

// OwnerOfKey returns the running master that serves key's slot.
func (c *Cluster) OwnerOfKey(key string) (*Server, error) { return c.Owner(KeySlot(key)) }

// Masters returns the running masters.
func (c *Cluster) Masters() ([]*Server, error) {
	nodes, err := c.Nodes()
	if err != nil {
		return nil, err
	}
	var out []*Server
	for _, n := range nodes {
		if n.Master && !n.Failed && len(n.Slots) > 0 {
			if s := c.Node(n.Addr); s != nil {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// WaitHealthy waits until every running node reports cluster_state:ok with
// all 16384 slots served, there are masters masters with replicas replicas
// each, and every replica's link to its master is up.
func (c *Cluster) WaitHealthy(masters, replicas int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var why string
	for {
		if why = c.health(masters, replicas); why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not healthy after %v: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) health(masters, replicas int) string {
	for _, s := range c.alive() {
		info, err := s.Do("CLUSTER", "INFO")
		if err != nil {
			return s.Addr() + ": " + err.Error()
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
			return s.Addr() + ": " + strings.ReplaceAll(strings.TrimSpace(info), "\r\n", " ")
		}
	}
	nodes, err := c.Nodes()
	if err != nil {
		return err.Error()
	}
	nm, nr := 0, 0
	for _, n := range nodes {
		switch {
		case n.Failed:
		case n.Master && len(n.Slots) > 0:
			nm++
		case !n.Master:
			nr++
			s := c.Node(n.Addr)
			if s == nil {
				continue
			}
			repl, err := s.Do("INFO", "replication")
			if err != nil || !strings.Contains(repl, "master_link_status:up") {
				return "replica " + n.Addr + " not in sync"
			}
		}
	}
	if nm != masters || nr != masters*replicas {
		return fmt.Sprintf("%d masters and %d replicas up, want %d and %d", nm, nr, masters, masters*replicas)
	}
	return ""
}

// WaitFailover waits until a live master (a promoted replica) serves every
// slot dead served and every running node reports cluster_state:ok, and
// returns that master. dead must have been killed or paused.
func (c *Cluster) WaitFailover(dead ClusterNode, timeout time.Duration) (*Server, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := c.promoted(dead)
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no failover of %s after %v: %w", dead.Addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) promoted(dead ClusterNode) (*Server, error) {
	var owner *Server
	for _, s := range c.alive() {
		info, err := s.Do("CLUSTER", "INFO")
		if err != nil {
			return nil, err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return nil, errors.New(s.Addr() + ": cluster_state not ok")
		}
		out, err := s.Do("CLUSTER", "NODES")
		if err != nil {
			return nil, err
		}
		for _, r := range dead.Slots {
			var o *ClusterNode
			for _, n := range parseClusterNodes(out) {
				if n.Master && !n.Failed && n.Addr != dead.Addr && n.Serves(r[0]) && n.Serves(r[1]) {
					o = &n
					break
				}
			}
			if o == nil {
				return nil, fmt.Errorf("%s: slots %d-%d not served by a live master yet", s.Addr(), r[0], r[1])
			}
			if owner == nil {
				owner = c.Node(o.Addr)
			} else if owner.Addr() != o.Addr {
				return nil, fmt.Errorf("%s: nodes disagree on the new master of %d-%d", s.Addr(), r[0], r[1])
			}
		}
	}
	if owner == nil {
		return nil, errors.New("no live node")
	}
	if role, err := owner.Do("INFO", "replication"); err != nil || !strings.Contains(role, "role:master") {
		return nil, fmt.Errorf("%s: not a master yet", owner.Addr())
	}
	return owner, nil
}

// Sentinel is a master, its replica and three sentinels monitoring them
// as SentinelMasterSet, owned by a test.
type Sentinel struct {
	servers []*Server
	// Sentinels are the three sentinel processes.
	Sentinels []*Server
}

// sentinelCommand returns the program and leading arguments that run a
// sentinel: redis-sentinel when installed, else redis-server --sentinel.
func sentinelCommand(conf string) (string, []string) {
	if p, err := exec.LookPath("redis-sentinel"); err == nil {
		return p, []string{conf}
	}
	return "redis-server", []string{conf, "--sentinel"}
}

// StartSentinel starts a master, one replica of it and three sentinels
// (quorum 2, down-after-milliseconds 1000, failover-timeout 3000), and
// waits until every sentinel knows the replica and the other sentinels, so
// a failover can start as soon as the master is down.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	RequireClusterTools(t)
	master := newNode(t)
	replica := newNode(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	st := &Sentinel{servers: []*Server{master, replica}}
	for range 3 {
		s := &Server{t: t, port: FreePort(t), dir: t.TempDir()}
		s.addr = "127.0.0.1:" + strconv.Itoa(s.port)
		conf := filepath.Join(s.dir, "sentinel.conf")
		body := strings.Join([]string{
			"port " + strconv.Itoa(s.port),
			"bind 127.0.0.1",
			"daemonize no",
			"dir " + s.dir,
			"sentinel resolve-hostnames no",
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", SentinelMasterSet, master.port),
			fmt.Sprintf("sentinel down-after-milliseconds %s %d", SentinelMasterSet, SentinelDownAfter.Milliseconds()),
			fmt.Sprintf("sentinel failover-timeout %s %d", SentinelMasterSet, SentinelFailoverTimeout.Milliseconds()),
			fmt.Sprintf("sentinel parallel-syncs %s 1", SentinelMasterSet),
		}, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		prog, args := sentinelCommand(conf)
		s.exec(prog, args)
		t.Cleanup(s.Kill)
		st.Sentinels = append(st.Sentinels, s)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		why := st.ready()
		if why == "" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinels not ready after 30s: %s", why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exec starts prog with args as this server's process and waits until it
// answers PING.
func (s *Server) exec(prog string, args []string) {
	s.t.Helper()
	cmd := exec.Command(prog, args...)
	out, _ := os.Create(filepath.Join(s.dir, "redis.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", prog, err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(s.addr) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	s.t.Fatalf("%s on %s did not become ready: %s", prog, s.addr, log)
}

func (st *Sentinel) ready() string {
	for _, s := range st.Sentinels {
		fields, err := s.DoList("SENTINEL", "MASTER", SentinelMasterSet)
		if err != nil {
			return s.Addr() + ": " + err.Error()
		}
		m := pairs(fields)
		if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" || m["flags"] != "master" {
			return fmt.Sprintf("%s: flags %s, %s replicas, %s other sentinels", s.Addr(), m["flags"], m["num-slaves"], m["num-other-sentinels"])
		}
	}
	repl, err := st.servers[1].Do("INFO", "replication")
	if err != nil || !strings.Contains(repl, "master_link_status:up") {
		return "replica not in sync"
	}
	return ""
}

func pairs(fields []string) map[string]string {
	m := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		m[fields[i]] = fields[i+1]
	}
	return m
}

// Addrs returns the sentinels' addresses.
func (st *Sentinel) Addrs() []string {
	out := make([]string, len(st.Sentinels))
	for i, s := range st.Sentinels {
		out[i] = s.Addr()
	}
	return out
}

// MasterAddr asks the sentinels for the current master's address.
func (st *Sentinel) MasterAddr() (string, error) {
	var lastErr error
	for _, s := range st.Sentinels {
		f, err := s.DoList("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMasterSet)
		if err == nil && len(f) == 2 {
			return net.JoinHostPort(f[0], f[1]), nil
		}
		lastErr = fmt.Errorf("%s: %v %w", s.Addr(), f, err)
	}
	return "", lastErr
}

// Server returns the data node (master or replica) listening on addr, or
// nil.
func (st *Sentinel) Server(addr string) *Server {
	for _, s := range st.servers {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// DataNodes returns the master and the replica the set started with.
func (st *Sentinel) DataNodes() []*Server { return append([]*Server(nil), st.servers...) }

// Master returns the data node the sentinels name master.
func (st *Sentinel) Master() (*Server, error) {
	addr, err := st.MasterAddr()
	if err != nil {
		return nil, err
	}
	if s := st.Server(addr); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("sentinels name %s, which is not a node of this set", addr)
}

// WaitFailover waits until every sentinel names a master other than old
// and that node reports role:master, and returns it.
func (st *Sentinel) WaitFailover(old string, timeout time.Duration) (*Server, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := st.failedOver(old)
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no failover from %s after %v: %w", old, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (st *Sentinel) failedOver(old string) (*Server, error) {
	var addr string
	for _, s := range st.Sentinels {
		f, err := s.DoList("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMasterSet)
		if err != nil || len(f) != 2 {
			return nil, fmt.Errorf("%s: %v %v", s.Addr(), f, err)
		}
		a := net.JoinHostPort(f[0], f[1])
		if a == old {
			return nil, fmt.Errorf("%s still names %s", s.Addr(), old)
		}
		if addr != "" && a != addr {
			return nil, fmt.Errorf("sentinels disagree: %s and %s", addr, a)
		}
		addr = a
	}
	s := st.Server(addr)
	if s == nil {
		return nil, fmt.Errorf("sentinels name %s, which is not a node of this set", addr)
	}
	if role, err := s.Do("INFO", "replication"); err != nil || !strings.Contains(role, "role:master") {
		return nil, fmt.Errorf("%s not a master yet", addr)
	}
	return s, nil
}

// DoList sends one command over a fresh connection and returns the reply
// flattened to strings: an array's elements (nested arrays inlined), or
// the single value. An error reply is an error.
func (s *Server) DoList(args ...string) ([]string, error) {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	var out []string
	err = readReply(bufio.NewReader(c), &out)
	return out, err
}

// readReply reads one RESP2 reply, appending its values to out.
func readReply(r *bufio.Reader, out *[]string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return errors.New("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		*out = append(*out, line[1:])
	case '-':
		return fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			*out = append(*out, "")
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(r, buf); err != nil {
			return err
		}
		*out = append(*out, string(buf[:n]))
	case '*':
		n, _ := strconv.Atoi(line[1:])
		for range n {
			if err := readReply(r, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}
