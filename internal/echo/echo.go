// Package echo is the demo and test upstream: it answers every request with
// a JSON document describing what it received (method, path, query,
// headers, body size), so anyone can see what the gateway forwarded.
package echo

import (
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Request is the JSON the echo upstream answers with.
type Request struct {
	Method   string              `json:"method"`
	Path     string              `json:"path"`
	RawURI   string              `json:"raw_uri"`
	Query    string              `json:"query,omitempty"`
	Host     string              `json:"host"`
	Headers  map[string][]string `json:"headers"`
	BodySize int                 `json:"body_size"`
	Server   string              `json:"server,omitempty"`
}

// Handler returns the echo handler; name is reported as "server" so tests
// can tell targets apart. Special paths: /healthz answers 200; a "sleep"
// query parameter (e.g. ?sleep=2s) delays the answer; "status" sets the
// status code; "size" sends a body of that many bytes instead of the JSON.
func Handler(name string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/healthz" {
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"status":"ok"}`)
			return
		}
		args := ctx.QueryArgs()
		if d, err := time.ParseDuration(string(args.Peek("sleep"))); err == nil && d > 0 && d <= time.Minute {
			time.Sleep(d)
		}
		status := fasthttp.StatusOK
		if s, err := strconv.Atoi(string(args.Peek("status"))); err == nil && s >= 200 && s <= 599 {
			status = s
		}
		if n, err := strconv.Atoi(string(args.Peek("size"))); err == nil && n >= 0 && n <= 256<<20 {
			ctx.SetStatusCode(status)
			ctx.SetContentType("application/octet-stream")
			body := make([]byte, n)
			for i := range body {
				body[i] = 'a' + byte(i%26)
			}
			ctx.SetBody(body)
			return
		}
		r := Request{
			Method:   string(ctx.Method()),
			Path:     string(ctx.Request.URI().PathOriginal()),
			RawURI:   string(ctx.RequestURI()),
			Query:    string(ctx.URI().QueryString()),
			Host:     string(ctx.Host()),
			Headers:  map[string][]string{},
			BodySize: len(ctx.PostBody()),
			Server:   name,
		}
		for k, v := range ctx.Request.Header.All() {
			r.Headers[string(k)] = append(r.Headers[string(k)], string(v))
		}
		for _, vs := range r.Headers {
			sort.Strings(vs)
		}
		out, _ := json.MarshalIndent(r, "", "  ")
		ctx.SetStatusCode(status)
		ctx.SetContentType("application/json")
		ctx.SetBody(append(out, '\n'))
	}
}
