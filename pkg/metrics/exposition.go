package metrics

import (
	"bytes"
	"io"
	"strings"
	"sync"

	vm "github.com/VictoriaMetrics/metrics"
)

func init() {
	// Every family gets # HELP and # TYPE lines: Prometheus' metadata API,
	// OpenTelemetry's Prometheus receiver and other scrapers need TYPE.
	vm.ExposeMetadata(true)
}

// Help holds the # HELP text of every metric family the gateway exports,
// keyed by family name. VictoriaMetrics/metrics writes the HELP line with
// the family name only; WritePrometheus completes it from here. A test
// checks that every gateway_* and http_* family exported has an entry.
var Help = map[string]string{
	// Requests, by route.
	"http_requests_total":                    "Requests answered by the gateway, by method, route and status code. Methods outside GET, HEAD, POST, PUT, DELETE, PATCH and OPTIONS count as OTHER; requests no route matched (404, 405, 413, 431, malformed) count under route=\"unmatched\".",
	"http_request_duration_seconds":          "Time from the start of a request to the end of its handling (the upstream's headers received, or the gateway's own answer written), by method and route. Series of a method appear on the first request with that method.",
	"http_response_size_bytes":               "Size of the response bodies the gateway sent, by route: the whole body, or the bytes of a streamed body up to its end. _sum is the total of response body bytes. The series appear with the route's first response.",
	"gateway_inflight_requests":              "Requests being handled right now (from arrival to the end of the handler).",
	"gateway_ratelimit_rejected_total":       "Requests refused with 429 by the ratelimit plugin, by route.",
	"gateway_auth_rejected_total":            "Requests refused by the jwt, api-key, blacklist or rbac plugin, by route and reason.",
	"gateway_websocket_connections":          "WebSocket tunnels open now, by route (routes with websocket: true).",
	"gateway_websocket_connections_total":    "WebSocket tunnels opened, by route (routes with websocket: true).",
	"gateway_connections_rejected_total":     "Client connections refused with a 503 because they were over server.max_connections or server.max_connections_per_ip, by reason.",
	"gateway_tls_certificate_expiry_seconds": "Seconds until the notAfter time of each certificate the TLS listener serves (negative once expired), by certificate name.",

	// Upstreams.
	"gateway_upstream_duration_seconds":  "Time of the whole upstream exchange of a request, all attempts included, until the response headers arrived, by upstream.",
	"gateway_upstream_requests_total":    "Upstream attempts by outcome: code_class is the status class of the upstream's answer (1xx to 5xx), or error when no valid response arrived (connect failure, timeout, reset, invalid response). Every attempt counts, retries included; by upstream.",
	"gateway_upstream_retries_total":     "Upstream attempts that were retries of an earlier failed attempt of the same request, by upstream.",
	"gateway_upstream_ejections_total":   "Times passive health checking ejected a target of the upstream after consecutive connect failures, by upstream.",
	"gateway_upstream_target_healthy":    "1 while the target takes traffic (passing its active health checks, or unchecked, and not ejected), 0 otherwise; by upstream and target.",
	"gateway_jwks_keys":                  "Keys of the provider's remote JSON Web Key Set the gateway holds; 0 until a fetch succeeded.",
	"gateway_jwks_refresh_errors_total":  "Failed downloads of the provider's JSON Web Key Set (the last good set stays in use).",
	"gateway_store_errors_total":         "Failed store (Redis or in-process) calls, by operation.",
	"gateway_store_breaker_state":        "State of the store circuit breaker: 0 closed, 1 open (calls fail fast), 2 half-open (one probe call in flight).",
	"gateway_store_breaker_opened_total": "Times repeated store failures opened the store circuit breaker.",
	"gateway_store_inflight_calls":       "Store calls the client library holds right now, whether their caller still waits or not.",
	"gateway_store_rejected_total":       "Store calls refused at once without reaching the store, by reason: overload (too many in flight) or breaker_open.",
	"gateway_store_timeouts_total":       "Store calls whose caller's deadline passed before the store answered.",

	// Configuration and process.
	"gateway_config_reloads_total":                         "Configuration reloads (SIGHUP, POST /-/reload, file watch), by result: success or failure.",
	"gateway_config_last_reload_success_timestamp_seconds": "Unix time of the last successful configuration load or reload.",
	"gateway_build_info":                                   "Always 1; the version label is the running gatewayd version.",

	// Go runtime and process metrics written by VictoriaMetrics/metrics.
	"go_cgo_calls_total":                  "Calls from Go to C made by the process.",
	"go_cpu_cores":                        "Logical CPUs usable by the process (runtime.NumCPU).",
	"go_gc_cpu_seconds_total":             "CPU time spent in the Go garbage collector.",
	"go_gc_duration_seconds":              "Wall time of Go garbage collection pauses (stop-the-world phases).",
	"go_gc_forced_total":                  "Garbage collections forced by the application (runtime.GC or debug.FreeOSMemory).",
	"go_gc_mark_assist_cpu_seconds_total": "CPU time goroutines spent assisting the garbage collector's marking.",
	"go_gc_pauses_seconds":                "Distribution of Go garbage collection stop-the-world pause times.",
	"go_gomaxprocs":                       "GOMAXPROCS: the number of OS threads that may run Go code at once.",
	"go_goroutines":                       "Goroutines that exist now.",
	"go_info":                             "Always 1; the version label is the Go version the binary was built with.",
	"go_info_ext":                         "Always 1; labels carry further Go runtime settings (GOGC, GOMEMLIMIT).",
	"go_memlimit_bytes":                   "The Go runtime's soft memory limit (GOMEMLIMIT).",
	"go_memstats_alloc_bytes":             "Bytes of allocated heap objects.",
	"go_memstats_alloc_bytes_total":       "Bytes allocated for heap objects since the process started.",
	"go_memstats_buck_hash_sys_bytes":     "Bytes of memory in profiling bucket hash tables.",
	"go_memstats_frees_total":             "Heap objects freed since the process started.",
	"go_memstats_gc_cpu_fraction":         "Fraction of the process's CPU time used by the garbage collector since the process started.",
	"go_memstats_gc_sys_bytes":            "Bytes of memory in garbage collection metadata.",
	"go_memstats_heap_alloc_bytes":        "Bytes of allocated heap objects.",
	"go_memstats_heap_idle_bytes":         "Bytes in idle (unused) heap spans.",
	"go_memstats_heap_inuse_bytes":        "Bytes in in-use heap spans.",
	"go_memstats_heap_objects":            "Allocated heap objects.",
	"go_memstats_heap_released_bytes":     "Bytes of physical memory returned to the OS.",
	"go_memstats_heap_sys_bytes":          "Bytes of heap memory obtained from the OS.",
	"go_memstats_last_gc_time_seconds":    "Unix time of the end of the last garbage collection.",
	"go_memstats_lookups_total":           "Pointer lookups performed by the runtime.",
	"go_memstats_mallocs_total":           "Heap objects allocated since the process started.",
	"go_memstats_mcache_inuse_bytes":      "Bytes of allocated mcache structures.",
	"go_memstats_mcache_sys_bytes":        "Bytes of memory obtained from the OS for mcache structures.",
	"go_memstats_mspan_inuse_bytes":       "Bytes of allocated mspan structures.",
	"go_memstats_mspan_sys_bytes":         "Bytes of memory obtained from the OS for mspan structures.",
	"go_memstats_next_gc_bytes":           "Heap size target of the next garbage collection.",
	"go_memstats_other_sys_bytes":         "Bytes of memory in miscellaneous off-heap runtime allocations.",
	"go_memstats_stack_inuse_bytes":       "Bytes in goroutine stack spans.",
	"go_memstats_stack_sys_bytes":         "Bytes of stack memory obtained from the OS.",
	"go_memstats_sys_bytes":               "Total bytes of memory obtained from the OS by the Go runtime.",
	"go_mutex_wait_seconds_total":         "Time goroutines spent blocked on sync.Mutex or sync.RWMutex.",
	"go_scavenge_cpu_seconds_total":       "CPU time spent returning unused memory to the OS.",
	"go_sched_latencies_seconds":          "Distribution of the time goroutines spent runnable before running.",
	"go_threads":                          "OS threads created by the process.",

	"process_cgroup_cpu_throttled_seconds_total":    "Time the process's cgroup was throttled by its CPU limit.",
	"process_cpu_seconds_system_total":              "CPU time the process spent in the kernel.",
	"process_cpu_seconds_total":                     "CPU time the process used, user and kernel.",
	"process_cpu_seconds_user_total":                "CPU time the process spent in user space.",
	"process_io_read_bytes_total":                   "Bytes the process read, from storage or not (/proc/self/io rchar).",
	"process_io_read_syscalls_total":                "Read system calls the process made.",
	"process_io_storage_read_bytes_total":           "Bytes the process caused to be read from storage.",
	"process_io_storage_written_bytes_total":        "Bytes the process caused to be written to storage.",
	"process_io_write_syscalls_total":               "Write system calls the process made.",
	"process_io_written_bytes_total":                "Bytes the process wrote, to storage or not (/proc/self/io wchar).",
	"process_major_pagefaults_total":                "Page faults of the process that needed a read from storage.",
	"process_max_fds":                               "Limit of open file descriptors of the process.",
	"process_minor_pagefaults_total":                "Page faults of the process served without a read from storage.",
	"process_num_threads":                           "OS threads of the process.",
	"process_open_fds":                              "File descriptors the process has open (sockets included).",
	"process_pressure_cpu_stalled_seconds_total":    "Time all tasks of the process's cgroup were stalled waiting for CPU (pressure stall information).",
	"process_pressure_cpu_waiting_seconds_total":    "Time some task of the process's cgroup waited for CPU (pressure stall information).",
	"process_pressure_io_stalled_seconds_total":     "Time all tasks of the process's cgroup were stalled on I/O (pressure stall information).",
	"process_pressure_io_waiting_seconds_total":     "Time some task of the process's cgroup waited on I/O (pressure stall information).",
	"process_pressure_memory_stalled_seconds_total": "Time all tasks of the process's cgroup were stalled on memory (pressure stall information).",
	"process_pressure_memory_waiting_seconds_total": "Time some task of the process's cgroup waited on memory (pressure stall information).",
	"process_resident_memory_anon_bytes":            "Resident anonymous memory of the process (heap, stacks).",
	"process_resident_memory_bytes":                 "Resident memory of the process (RSS).",
	"process_resident_memory_file_bytes":            "Resident file-backed memory of the process.",
	"process_resident_memory_peak_bytes":            "Peak resident memory of the process.",
	"process_resident_memory_shared_bytes":          "Resident shared memory of the process.",
	"process_start_time_seconds":                    "Unix time the process started.",
	"process_virtual_memory_bytes":                  "Virtual memory size of the process.",
	"process_virtual_memory_peak_bytes":             "Peak virtual memory size of the process.",
}

// renamed are runtime families VictoriaMetrics/metrics exports under names
// that break the Prometheus naming rules promtool checks (a counter without
// _total, a gauge ending in _count); they are exported under these names
// instead.
var renamed = map[string]string{
	"go_cgo_calls_count": "go_cgo_calls_total",
	"go_gc_forced_count": "go_gc_forced_total",
	"go_cpu_count":       "go_cpu_cores",
}

// retyped are runtime families VictoriaMetrics/metrics types as gauges
// although they only grow: /proc/self/io's cumulative counts.
var retyped = map[string]string{
	"process_io_read_bytes_total":            "counter",
	"process_io_read_syscalls_total":         "counter",
	"process_io_storage_read_bytes_total":    "counter",
	"process_io_storage_written_bytes_total": "counter",
	"process_io_write_syscalls_total":        "counter",
	"process_io_written_bytes_total":         "counter",
}

var exposition = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// WritePrometheus writes every metric in Prometheus text format, with the
// Go runtime and process metrics (including process_open_fds), each family
// preceded by its # HELP text and # TYPE.
func WritePrometheus(w io.Writer) {
	raw := exposition.Get().(*bytes.Buffer)
	raw.Reset()
	vm.WritePrometheus(raw, true)
	vm.WriteFDMetrics(raw)
	out := exposition.Get().(*bytes.Buffer)
	out.Reset()
	annotate(out, raw.Bytes())
	_, _ = w.Write(out.Bytes())
	exposition.Put(raw)
	exposition.Put(out)
}

// annotate copies the exposition src to dst, completing # HELP lines from
// Help and applying renamed and retyped.
func annotate(dst *bytes.Buffer, src []byte) {
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		if len(line) == 0 {
			continue
		}
		switch {
		case bytes.HasPrefix(line, []byte("# HELP ")):
			fields := strings.Fields(string(line[len("# HELP "):]))
			if len(fields) == 0 {
				continue
			}
			family := rename(fields[0])
			dst.WriteString("# HELP ")
			dst.WriteString(family)
			dst.WriteByte(' ')
			if len(fields) > 1 && fields[0] == family {
				// The writer had help text of its own.
				dst.WriteString(strings.Join(fields[1:], " "))
			} else {
				dst.WriteString(helpText(family))
			}
		case bytes.HasPrefix(line, []byte("# TYPE ")):
			fields := strings.Fields(string(line[len("# TYPE "):]))
			if len(fields) != 2 {
				dst.Write(line)
				break
			}
			family, typ := rename(fields[0]), fields[1]
			if t, ok := retyped[family]; ok {
				typ = t
			}
			dst.WriteString("# TYPE " + family + " " + typ)
		default:
			name := line
			if i := bytes.IndexAny(line, "{ "); i >= 0 {
				name = line[:i]
			}
			if to, ok := renamed[string(name)]; ok {
				dst.WriteString(to)
				dst.Write(line[len(name):])
			} else {
				dst.Write(line)
			}
		}
		dst.WriteByte('\n')
	}
}

func rename(family string) string {
	if to, ok := renamed[family]; ok {
		return to
	}
	return family
}

// helpText is family's help, or a description naming where an
// undocumented runtime family comes from.
func helpText(family string) string {
	if h, ok := Help[family]; ok {
		return h
	}
	switch {
	case strings.HasPrefix(family, "go_"):
		return "Go runtime metric " + family + " (see the runtime/metrics package)."
	case strings.HasPrefix(family, "process_"):
		return "Process metric " + family + " read from /proc."
	}
	return "Metric " + family + " of gatewayd."
}
