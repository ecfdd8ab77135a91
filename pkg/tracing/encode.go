package tracing

import (
	"math"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// The OTLP trace protocol's messages are written here field by field with
// protowire, from opentelemetry-proto's trace/v1, common/v1, resource/v1
// and collector/trace/v1 definitions. The generated Go types and the
// protobuf runtime behind them would take about 3 MB of the binary, most
// of which the kernel keeps resident (docs/operations.md, "Memory"); the
// tests decode what is written here with those generated types.

// Field numbers of the OTLP messages.
const (
	// ExportTraceServiceRequest
	fRequestResourceSpans protowire.Number = 1

	// ResourceSpans
	fResourceSpansResource   protowire.Number = 1
	fResourceSpansScopeSpans protowire.Number = 2
	fResourceSpansSchemaURL  protowire.Number = 3

	// Resource
	fResourceAttributes protowire.Number = 1

	// ScopeSpans
	fScopeSpansScope     protowire.Number = 1
	fScopeSpansSpans     protowire.Number = 2
	fScopeSpansSchemaURL protowire.Number = 3

	// InstrumentationScope
	fScopeName       protowire.Number = 1
	fScopeVersion    protowire.Number = 2
	fScopeAttributes protowire.Number = 3

	// Span
	fSpanTraceID           protowire.Number = 1
	fSpanSpanID            protowire.Number = 2
	fSpanTraceState        protowire.Number = 3
	fSpanParentSpanID      protowire.Number = 4
	fSpanName              protowire.Number = 5
	fSpanKind              protowire.Number = 6
	fSpanStartTime         protowire.Number = 7
	fSpanEndTime           protowire.Number = 8
	fSpanAttributes        protowire.Number = 9
	fSpanDroppedAttributes protowire.Number = 10
	fSpanEvents            protowire.Number = 11
	fSpanDroppedEvents     protowire.Number = 12
	fSpanLinks             protowire.Number = 13
	fSpanDroppedLinks      protowire.Number = 14
	fSpanStatus            protowire.Number = 15
	fSpanFlags             protowire.Number = 16

	// Span.Event
	fEventTime              protowire.Number = 1
	fEventName              protowire.Number = 2
	fEventAttributes        protowire.Number = 3
	fEventDroppedAttributes protowire.Number = 4

	// Span.Link
	fLinkTraceID           protowire.Number = 1
	fLinkSpanID            protowire.Number = 2
	fLinkTraceState        protowire.Number = 3
	fLinkAttributes        protowire.Number = 4
	fLinkDroppedAttributes protowire.Number = 5
	fLinkFlags             protowire.Number = 6

	// Status
	fStatusMessage protowire.Number = 2
	fStatusCode    protowire.Number = 3

	// KeyValue
	fKeyValueKey   protowire.Number = 1
	fKeyValueValue protowire.Number = 2

	// AnyValue
	fValueString protowire.Number = 1
	fValueBool   protowire.Number = 2
	fValueInt    protowire.Number = 3
	fValueDouble protowire.Number = 4
	fValueArray  protowire.Number = 5

	// ArrayValue
	fArrayValues protowire.Number = 1

	// ExportTraceServiceResponse and ExportTracePartialSuccess
	fResponsePartialSuccess protowire.Number = 1
	fPartialRejectedSpans   protowire.Number = 1
	fPartialErrorMessage    protowire.Number = 2

	// google.rpc.Status, the body of an OTLP/HTTP error answer
	fRPCStatusMessage protowire.Number = 2
)

// OTLP's Status.StatusCode (which numbers OK and ERROR the other way
// round from the SDK's codes).
const (
	statusUnset = 0
	statusOK    = 1
	statusError = 2
)

// OTLP's SpanFlags: the low byte holds the W3C trace flags; these say
// whether the parent (for a span) or the linked span (for a link) is
// remote.
const (
	flagsHasIsRemote = 0x100
	flagsIsRemote    = 0x200
)

// appendRequest appends an ExportTraceServiceRequest carrying spans,
// grouped by resource and instrumentation scope in the order they first
// appear.
func appendRequest(b []byte, spans []sdktrace.ReadOnlySpan) []byte {
	type scopeGroup struct {
		scope instrumentation.Scope
		spans []sdktrace.ReadOnlySpan
	}
	type resourceGroup struct {
		res    *resource.Resource
		scopes []*scopeGroup
	}
	var groups []*resourceGroup
	for _, s := range spans {
		var rg *resourceGroup
		for _, g := range groups {
			if g.res == s.Resource() {
				rg = g
				break
			}
		}
		if rg == nil {
			rg = &resourceGroup{res: s.Resource()}
			groups = append(groups, rg)
		}
		scope := s.InstrumentationScope()
		var sg *scopeGroup
		for _, g := range rg.scopes {
			if sameScope(g.scope, scope) {
				sg = g
				break
			}
		}
		if sg == nil {
			sg = &scopeGroup{scope: scope}
			rg.scopes = append(rg.scopes, sg)
		}
		sg.spans = append(sg.spans, s)
	}
	for _, rg := range groups {
		b = appendMessage(b, fRequestResourceSpans, func(b []byte) []byte {
			if rg.res != nil {
				b = appendMessage(b, fResourceSpansResource, func(b []byte) []byte {
					return appendAttributes(b, fResourceAttributes, rg.res.Attributes())
				})
			}
			for _, sg := range rg.scopes {
				b = appendMessage(b, fResourceSpansScopeSpans, func(b []byte) []byte {
					b = appendMessage(b, fScopeSpansScope, func(b []byte) []byte {
						b = appendString(b, fScopeName, sg.scope.Name)
						b = appendString(b, fScopeVersion, sg.scope.Version)
						return appendAttributes(b, fScopeAttributes, sg.scope.Attributes.ToSlice())
					})
					for _, s := range sg.spans {
						b = appendMessage(b, fScopeSpansSpans, func(b []byte) []byte { return appendSpan(b, s) })
					}
					return appendString(b, fScopeSpansSchemaURL, sg.scope.SchemaURL)
				})
			}
			if rg.res != nil {
				b = appendString(b, fResourceSpansSchemaURL, rg.res.SchemaURL())
			}
			return b
		})
	}
	return b
}

func sameScope(a, b instrumentation.Scope) bool {
	return a.Name == b.Name && a.Version == b.Version && a.SchemaURL == b.SchemaURL && a.Attributes.Equals(&b.Attributes)
}

// appendSpan appends the fields of one Span message.
func appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, fSpanTraceID, tid[:])
	b = appendBytes(b, fSpanSpanID, sid[:])
	b = appendString(b, fSpanTraceState, sc.TraceState().String())
	parent := s.Parent()
	if parent.SpanID().IsValid() {
		psid := parent.SpanID()
		b = appendBytes(b, fSpanParentSpanID, psid[:])
	}
	b = appendString(b, fSpanName, s.Name())
	if k := s.SpanKind(); k != trace.SpanKindUnspecified {
		// The SDK's kinds are numbered as OTLP's.
		b = protowire.AppendTag(b, fSpanKind, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(k))
	}
	b = appendFixed64(b, fSpanStartTime, unixNano(s.StartTime().UnixNano()))
	b = appendFixed64(b, fSpanEndTime, unixNano(s.EndTime().UnixNano()))
	b = appendAttributes(b, fSpanAttributes, s.Attributes())
	b = appendUint(b, fSpanDroppedAttributes, uint64(s.DroppedAttributes()))
	for _, e := range s.Events() {
		b = appendMessage(b, fSpanEvents, func(b []byte) []byte {
			b = appendFixed64(b, fEventTime, unixNano(e.Time.UnixNano()))
			b = appendString(b, fEventName, e.Name)
			b = appendAttributes(b, fEventAttributes, e.Attributes)
			return appendUint(b, fEventDroppedAttributes, uint64(e.DroppedAttributeCount))
		})
	}
	b = appendUint(b, fSpanDroppedEvents, uint64(s.DroppedEvents()))
	for _, l := range s.Links() {
		b = appendMessage(b, fSpanLinks, func(b []byte) []byte {
			ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
			b = appendBytes(b, fLinkTraceID, ltid[:])
			b = appendBytes(b, fLinkSpanID, lsid[:])
			b = appendString(b, fLinkTraceState, l.SpanContext.TraceState().String())
			b = appendAttributes(b, fLinkAttributes, l.Attributes)
			b = appendUint(b, fLinkDroppedAttributes, uint64(l.DroppedAttributeCount))
			return appendFixed32(b, fLinkFlags, spanFlags(l.SpanContext))
		})
	}
	b = appendUint(b, fSpanDroppedLinks, uint64(s.DroppedLinks()))
	if st := s.Status(); st.Code != codes.Unset || st.Description != "" {
		b = appendMessage(b, fSpanStatus, func(b []byte) []byte {
			b = appendString(b, fStatusMessage, st.Description)
			code := uint64(statusUnset)
			switch st.Code {
			case codes.Ok:
				code = statusOK
			case codes.Error:
				code = statusError
			}
			return appendUint(b, fStatusCode, code)
		})
	}
	// The span's own trace flags, and whether its parent is remote.
	flags := uint32(sc.TraceFlags()) | flagsHasIsRemote
	if parent.IsRemote() {
		flags |= flagsIsRemote
	}
	return appendFixed32(b, fSpanFlags, flags)
}

// spanFlags is a link's flags: the linked span's trace flags and whether
// it is remote.
func spanFlags(sc trace.SpanContext) uint32 {
	flags := uint32(sc.TraceFlags()) | flagsHasIsRemote
	if sc.IsRemote() {
		flags |= flagsIsRemote
	}
	return flags
}

// unixNano clamps a time before the epoch (the zero time) to 0.
func unixNano(ns int64) uint64 {
	if ns < 0 {
		return 0
	}
	return uint64(ns)
}

// appendAttributes appends each attribute as a KeyValue message in field
// num.
func appendAttributes(b []byte, num protowire.Number, kvs []attribute.KeyValue) []byte {
	for _, kv := range kvs {
		if !kv.Valid() {
			continue
		}
		b = appendMessage(b, num, func(b []byte) []byte {
			b = appendString(b, fKeyValueKey, string(kv.Key))
			return appendMessage(b, fKeyValueValue, func(b []byte) []byte { return appendValue(b, kv.Value) })
		})
	}
	return b
}

// appendValue appends the fields of the AnyValue message of v.
func appendValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOL:
		return appendBool(b, fValueBool, v.AsBool())
	case attribute.INT64:
		b = protowire.AppendTag(b, fValueInt, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return appendFixed64(b, fValueDouble, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		// An empty string is still a string value: written even when empty.
		b = protowire.AppendTag(b, fValueString, protowire.BytesType)
		return protowire.AppendString(b, v.AsString())
	case attribute.BOOLSLICE:
		return appendArray(b, v.AsBoolSlice(), func(b []byte, x bool) []byte { return appendBool(b, fValueBool, x) })
	case attribute.INT64SLICE:
		return appendArray(b, v.AsInt64Slice(), func(b []byte, x int64) []byte {
			b = protowire.AppendTag(b, fValueInt, protowire.VarintType)
			return protowire.AppendVarint(b, uint64(x))
		})
	case attribute.FLOAT64SLICE:
		return appendArray(b, v.AsFloat64Slice(), func(b []byte, x float64) []byte {
			return appendFixed64(b, fValueDouble, math.Float64bits(x))
		})
	case attribute.STRINGSLICE:
		return appendArray(b, v.AsStringSlice(), func(b []byte, x string) []byte {
			b = protowire.AppendTag(b, fValueString, protowire.BytesType)
			return protowire.AppendString(b, x)
		})
	}
	return b
}

// appendArray appends an ArrayValue holding xs as the array_value of an
// AnyValue.
func appendArray[T any](b []byte, xs []T, value func([]byte, T) []byte) []byte {
	return appendMessage(b, fValueArray, func(b []byte) []byte {
		for _, x := range xs {
			b = appendMessage(b, fArrayValues, func(b []byte) []byte { return value(b, x) })
		}
		return b
	})
}

// appendMessage appends field num holding the message that body appends.
// The body is written in place and moved after its length once known:
// one copy per nesting level, on the exporter's goroutine.
func appendMessage(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b = body(b)
	n := len(b) - start
	var lenBuf [binaryMaxVarintLen]byte
	l := protowire.AppendVarint(lenBuf[:0], uint64(n))
	b = append(b, l...)
	copy(b[start+len(l):], b[start:start+n])
	copy(b[start:], l)
	return b
}

const binaryMaxVarintLen = 10

// The scalar writers leave out a field at its default value, as proto3
// does.

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, protowire.EncodeBool(v))
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

// partialSuccess reads an ExportTraceServiceResponse: how many spans the
// collector rejected, and why. A malformed response reads as full success
// (the spans were accepted: the status said so).
func partialSuccess(b []byte) (rejected int64, msg string) {
	ok := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if num != fResponsePartialSuccess || typ != protowire.BytesType {
			return
		}
		fields(v, func(num protowire.Number, typ protowire.Type, v []byte, u uint64) {
			switch {
			case num == fPartialRejectedSpans && typ == protowire.VarintType:
				rejected = int64(u)
			case num == fPartialErrorMessage && typ == protowire.BytesType:
				msg = string(v)
			}
		})
	})
	if !ok {
		return 0, ""
	}
	return rejected, msg
}

// rpcStatusMessage reads the message of a google.rpc.Status.
func rpcStatusMessage(b []byte) (msg string) {
	fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if num == fRPCStatusMessage && typ == protowire.BytesType {
			msg = string(v)
		}
	})
	return msg
}

// fields calls f with each field of the message b: its number and wire
// type, and its value, as bytes for a length-delimited field and as a
// number for a varint (other types are skipped). It reports false, having
// stopped, at a malformed field.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, u uint64)) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			f(num, typ, v, 0)
			b = b[n:]
		case protowire.VarintType:
			u, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			f(num, typ, nil, u)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
		}
	}
	return true
}
