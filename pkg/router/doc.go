// Package router holds the gateway's compiled route table and the request path
// normalisation it is matched against.
//
// # Normalisation
//
// The gateway authorises a request on the route chosen for its path and sends
// that same path upstream, so both must be computed from one set of bytes.
// NormalizePath turns the raw request path (the bytes before '?', as received)
// into that form:
//
//   - it must start with '/' and be at most MaxPathLength bytes long;
//   - every percent escape is decoded, %2F and %2E included; an invalid or
//     truncated escape, and a NUL or any other ASCII control byte, raw or
//     decoded, is rejected with ErrBadPath;
//   - repeated slashes are collapsed and "." and ".." segments are resolved,
//     never above the root ("/../x" is "/x");
//   - a trailing slash is kept, and a final "." or ".." leaves one
//     ("/a/b/.." is "/a/");
//   - a backslash is an ordinary byte, not a separator.
//
// Decoding happens once, before segments are resolved, so "/v1/%2e%2e/admin"
// and "/v1/admin%2F..%2Fusers" are resolved like their decoded forms, and
// "%252e" stays the three bytes "%2e". AppendEscapedPath re-encodes a
// normalised path for the upstream request line; normalising its output again
// gives the same path, so the upstream sees exactly the path that was routed.
//
// # Matching
//
// A Table is built once per configuration by New, which rejects the whole
// route list with every problem it finds, and is read-only afterwards. Route
// paths are written in decoded, normalised form. A Path may hold
// parameters, each a whole segment: {name} matches one non-empty segment
// and a final {name...} the rest of the path after its slash (possibly
// empty). Since the request path is decoded before matching, an encoded
// slash separates segments like a raw one, and a captured segment is never
// "." or "..". Table.Match orders candidates as follows:
//
//  1. host: routes for the exact request host (case-insensitive, port and
//     final dot ignored), then wildcard routes ("*.example.com" matches
//     a.example.com and a.b.example.com, never example.com) from the longest
//     suffix to the shortest, then routes without a host;
//  2. path pattern, within one host selector, segment by segment from the
//     left: a literal segment beats a {name}, which beats a catch-all (a
//     PathPrefix, or a final {name...}), and a path that ends beats a
//     catch-all matching the empty rest. So an exact path beats everything
//     and a longer prefix beats a shorter one. Prefixes match whole
//     segments: "/v1/admin" matches "/v1/admin" and "/v1/admin/x" but not
//     "/v1/adminx", and "/" matches everything;
//  3. header conditions: at one pattern, routes with more conditions come
//     first, and a route whose conditions do not hold (names compared
//     case-insensitively, values exactly) is not a candidate at all, so the
//     request goes on to a less specific pattern;
//  4. method: the most specific pattern with a candidate decides. Among its
//     candidates, the one whose Methods accept the request method wins; a
//     route without Methods accepts every method, and one that accepts GET
//     also accepts HEAD. Methods are compared case-sensitively (RFC 9110):
//     "get" and "FOO" are accepted only by routes without Methods.
//
// If none of the candidates at the most specific pattern accepts the method,
// the result is a 405 with an Allow value listing the union of their methods
// (sorted, "GET, HEAD, POST"); a less specific route is never tried, so a
// catch-all "/" cannot serve a PATCH that a protected "/v1/users/" refuses.
// If no route matches it is a 404.
//
// Two routes that are equally specific for some request are an error, so
// the selection never depends on declaration order: the same host, the same
// pattern (parameter names aside; a final {name...} is the same as the
// PathPrefix of the segments before it, and a prefix is the same with or
// without its trailing slash), overlapping methods, the same number of
// header conditions and conditions one request can satisfy together.
//
// Captured parameters are offsets into the path in a fixed-size Params on
// the Result, and a route's Rewrite template appends the upstream path into
// a caller's buffer. Neither Match nor Rewrite.Append allocates.
package router
