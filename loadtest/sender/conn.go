package main

import (
	"bufio"
	"net"
)

// conn is one keep-alive connection to a target.
type conn struct {
	net.Conn
	reader *bufio.Reader
}

// answer is what one response said.
type answer struct {
	status int
	// queueMs is the X-Fairlane-Queue-Ms the answer named, or -1 (another system's answer).
	queueMs float64
	// reusable: the connection may carry another request (the body was read whole, no close).
	reusable bool
}

func dial(host string) (*conn, error) {
	c, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, reader: bufio.NewReaderSize(c, 16<<10)}, nil
}

// exchange writes one request and reads its whole response.
func (c *conn) exchange(request []byte) (answer, error) {
	if _, err := c.Write(request); err != nil {
		return answer{}, err
	}
	return readAnswer(c.reader)
}
