package main

import "sync"

// pool holds one target's keep-alive connections: the most recently used first (so a
// steady rate keeps a few connections warm), at most max open, and requests beyond that
// wait in order for one to come back.
type pool struct {
	host    string
	max     int
	mu      sync.Mutex
	idle    []*conn
	open    int
	waiting []chan *conn
}

func newPool(host string, max int) *pool {
	return &pool{host: host, max: max}
}

// get returns an idle connection, a new one, or the next one given back.
func (p *pool) get() (*conn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	if p.open < p.max {
		p.open++
		p.mu.Unlock()
		return p.dialCounted()
	}
	ready := make(chan *conn, 1)
	p.waiting = append(p.waiting, ready)
	p.mu.Unlock()
	if c := <-ready; c != nil {
		return c, nil
	}
	// A connection was closed and its place handed over: open a new one in it.
	return p.dialCounted()
}

// dialCounted opens a connection whose place in `open` is already taken.
func (p *pool) dialCounted() (*conn, error) {
	c, err := dial(p.host)
	if err != nil {
		p.release()
	}
	return c, err
}

// put gives a connection back after a whole answer, to the first waiting request if any.
func (p *pool) put(c *conn) {
	p.mu.Lock()
	if ready := p.firstWaiting(); ready != nil {
		p.mu.Unlock()
		ready <- c
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// discard closes a connection that cannot carry another request.
func (p *pool) discard(c *conn) {
	_ = c.Close()
	p.release()
}

// release frees a place in `open`, or hands it to the first waiting request.
func (p *pool) release() {
	p.mu.Lock()
	if ready := p.firstWaiting(); ready != nil {
		p.mu.Unlock()
		ready <- nil
		return
	}
	p.open--
	p.mu.Unlock()
}

// firstWaiting takes the first waiting request off the queue; nil when none waits. p.mu is held.
func (p *pool) firstWaiting() chan *conn {
	if len(p.waiting) == 0 {
		return nil
	}
	ready := p.waiting[0]
	p.waiting = p.waiting[1:]
	return ready
}

// close closes the idle connections; the sender has stopped.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.idle {
		_ = c.Close()
	}
	p.idle = nil
}
