package apierror

import (
	"encoding/json"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name     string
		giveMsg  string
		giveID   string
		giveInt  bool
		wantBody map[string]any
	}{
		{name: "plain", giveMsg: "no route matches this request", giveID: "abc",
			wantBody: map[string]any{"error": "not_found", "message": "no route matches this request", "request_id": "abc"}},
		{name: "escaped message", giveMsg: "bad \"thing\"\n\\ é \x01", giveID: "id-1",
			wantBody: map[string]any{"error": "not_found", "message": "bad \"thing\"\n\\ é \x01", "request_id": "id-1"}},
		{name: "no state", giveMsg: "m",
			wantBody: map[string]any{"error": "not_found", "message": "m", "request_id": ""}},
		{name: "with retry_after", giveMsg: "rate limit exceeded", giveID: "x", giveInt: true,
			wantBody: map[string]any{"error": "not_found", "message": "rate limit exceeded", "request_id": "x", "retry_after": float64(17)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			if tt.giveID != "" {
				st := reqctx.Acquire(&ctx)
				st.RequestID = append(st.RequestID, tt.giveID...)
			}
			ctx.Response.Header.Set("X-Kept", "1")
			ctx.Response.SetBodyString("previous body")
			if tt.giveInt {
				WriteInt(&ctx, 404, CodeNotFound, tt.giveMsg, "retry_after", 17)
			} else {
				Write(&ctx, 404, CodeNotFound, tt.giveMsg)
			}
			var got map[string]any
			if err := json.Unmarshal(ctx.Response.Body(), &got); err != nil {
				t.Fatalf("not JSON: %v: %s", err, ctx.Response.Body())
			}
			if len(got) != len(tt.wantBody) {
				t.Fatalf("body %v, want %v", got, tt.wantBody)
			}
			for k, v := range tt.wantBody {
				if got[k] != v {
					t.Fatalf("%s = %v, want %v", k, got[k], v)
				}
			}
			if ctx.Response.StatusCode() != 404 || string(ctx.Response.Header.ContentType()) != "application/json" ||
				string(ctx.Response.Header.Peek("X-Kept")) != "1" {
				t.Fatalf("status/headers wrong: %s", ctx.Response.Header.String())
			}
		})
	}
}

func TestCodeFor(t *testing.T) {
	tests := []struct {
		give int
		want string
	}{
		{400, CodeBadRequest}, {401, CodeUnauthorized}, {403, CodeForbidden}, {404, CodeNotFound},
		{405, CodeMethodNotAllowed}, {409, CodeConflict}, {413, CodePayloadTooLarge}, {431, CodeHeaderTooLarge},
		{429, CodeRateLimited}, {502, CodeBadGateway}, {503, CodeUnavailable}, {504, CodeGatewayTimeout}, {500, CodeInternal},
	}
	for _, tt := range tests {
		if got := CodeFor(tt.give); got != tt.want {
			t.Errorf("CodeFor(%d) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
