package plugins

import (
	"io"
	"sync"
)

// Resources is a reference-counted pool of long-lived objects shared by
// plugin instances and kept alive across reloads: a new generation acquires
// the same key before the old one releases it, so the object survives.
type Resources struct {
	mu    sync.Mutex
	items map[string]*resource
}

type resource struct {
	val  io.Closer
	refs int
}

// NewResources returns an empty pool.
func NewResources() *Resources { return &Resources{items: map[string]*resource{}} }

// Acquire returns the object stored under key, creating it with create when
// absent, and a release func to call exactly once when done with it. The
// object is closed when its last reference is released.
func (r *Resources) Acquire(key string, create func() (io.Closer, error)) (io.Closer, func() error, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	it, ok := r.items[key]
	if !ok {
		v, err := create()
		if err != nil {
			return nil, nil, err
		}
		it = &resource{val: v}
		r.items[key] = it
	}
	it.refs++
	var once sync.Once
	release := func() error {
		var err error
		once.Do(func() { err = r.release(key, it) })
		return err
	}
	return it.val, release, nil
}

func (r *Resources) release(key string, it *resource) error {
	r.mu.Lock()
	it.refs--
	last := it.refs == 0
	if last {
		delete(r.items, key)
	}
	r.mu.Unlock()
	if last {
		return it.val.Close()
	}
	return nil
}

// Len returns how many objects are alive.
func (r *Resources) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}
