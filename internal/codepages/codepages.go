// Package codepages hands the pages of the running executable's code and
// read-only data back to the page cache once startup is over.
//
// The kernel maps a file's pages into the process as they are first
// touched, and maps the neighbours of each one with it (fault-around, 64
// KiB by default). Startup runs code that never runs again (package
// initialisers, configuration decoding, plugin factories) scattered over
// the whole binary, so after it most of the binary's code counts in the
// resident set. Release unmaps those read-only pages: they stay in the
// page cache, and what the process runs afterwards is mapped again on its
// first touch, at the cost of a minor fault per 64 KiB.
package codepages
