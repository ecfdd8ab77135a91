// Package apierror writes the JSON error bodies of the gateway and the auth
// service:
//
//	{"error":"<code>","message":"<human text>","request_id":"<id>"}
//
// Messages are fixed texts chosen by the caller, never Go error strings.
package apierror

import (
	"strconv"
	"unicode/utf8"

	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// Error codes of SPEC §5.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodePayloadTooLarge  = "payload_too_large"
	CodeHeaderTooLarge   = "header_too_large"
	CodeRateLimited      = "rate_limited"
	CodeAccountLocked    = "account_locked"
	CodeInternal         = "internal"
	CodeBadGateway       = "bad_gateway"
	CodeUnavailable      = "unavailable"
	CodeGatewayTimeout   = "gateway_timeout"
	// CodeRequestTimeout (408) is not in SPEC §5's list: the client took
	// longer than server.header_timeout or read_timeout to send its request.
	CodeRequestTimeout = "request_timeout"
)

// CodeFor returns the error code for a status the gateway writes.
func CodeFor(status int) string {
	switch status {
	case fasthttp.StatusBadRequest:
		return CodeBadRequest
	case fasthttp.StatusUnauthorized:
		return CodeUnauthorized
	case fasthttp.StatusForbidden:
		return CodeForbidden
	case fasthttp.StatusNotFound:
		return CodeNotFound
	case fasthttp.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case fasthttp.StatusConflict:
		return CodeConflict
	case fasthttp.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	case fasthttp.StatusRequestHeaderFieldsTooLarge:
		return CodeHeaderTooLarge
	case fasthttp.StatusTooManyRequests:
		return CodeRateLimited
	case fasthttp.StatusBadGateway:
		return CodeBadGateway
	case fasthttp.StatusServiceUnavailable:
		return CodeUnavailable
	case fasthttp.StatusGatewayTimeout:
		return CodeGatewayTimeout
	case fasthttp.StatusRequestTimeout:
		return CodeRequestTimeout
	}
	return CodeInternal
}

var contentTypeJSON = []byte("application/json")

// Write replaces the response body with the JSON error and sets status and
// Content-Type. Headers already set (request id, rate-limit headers, CORS)
// are kept. The request id comes from the request's reqctx.State.
func Write(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	begin(ctx, status, code, msg)
	ctx.Response.AppendBodyString("}")
}

// WriteInt is Write with one extra integer field, e.g. "retry_after".
func WriteInt(ctx *fasthttp.RequestCtx, status int, code, msg, field string, v int64) {
	begin(ctx, status, code, msg)
	ctx.Response.AppendBodyString(`,"`)
	ctx.Response.AppendBodyString(field)
	ctx.Response.AppendBodyString(`":`)
	var buf [20]byte
	ctx.Response.AppendBody(strconv.AppendInt(buf[:0], v, 10))
	ctx.Response.AppendBodyString("}")
}

func begin(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.ResetBody()
	ctx.Response.AppendBodyString(`{"error":"`)
	ctx.Response.AppendBodyString(code)
	ctx.Response.AppendBodyString(`","message":`)
	appendString(ctx, msg)
	ctx.Response.AppendBodyString(`,"request_id":`)
	var id []byte
	if s := reqctx.Get(ctx); s != nil {
		id = s.RequestID
	}
	appendBytes(ctx, id)
}

const hex = "0123456789abcdef"

func appendString(ctx *fasthttp.RequestCtx, s string) {
	ctx.Response.AppendBodyString(`"`)
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		ctx.Response.AppendBodyString(s[start:i])
		switch c {
		case '"':
			ctx.Response.AppendBodyString(`\"`)
		case '\\':
			ctx.Response.AppendBodyString(`\\`)
		case '\n':
			ctx.Response.AppendBodyString(`\n`)
		default:
			ctx.Response.AppendBodyString(`\u00`)
			ctx.Response.AppendBody([]byte{hex[c>>4], hex[c&0xf]})
		}
		i++
		start = i
	}
	ctx.Response.AppendBodyString(s[start:])
	ctx.Response.AppendBodyString(`"`)
}

func appendBytes(ctx *fasthttp.RequestCtx, b []byte) {
	// Request ids are validated to a safe charset; escape anyway.
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			appendString(ctx, string(b))
			return
		}
	}
	ctx.Response.AppendBodyString(`"`)
	ctx.Response.AppendBody(b)
	ctx.Response.AppendBodyString(`"`)
}
