package main

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func read(t *testing.T, text string) (answer, *bufio.Reader, error) {
	t.Helper()
	r := bufio.NewReader(strings.NewReader(text))
	a, err := readAnswer(r)
	return a, r, err
}

func TestReadsAnswerWithContentLength(t *testing.T) {
	a, r, err := read(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Fairlane-Queue-Ms: 12\r\n\r\nhelloNEXT")
	if err != nil {
		t.Fatal(err)
	}
	if a.status != 200 || a.queueMs != 12 || !a.reusable {
		t.Fatalf("got %+v", a)
	}
	rest, _ := r.ReadString(0)
	if rest != "NEXT" {
		t.Fatalf("the body was not read whole: %q left", rest)
	}
}

func TestReadsChunkedAnswerWithExtensionsAndTrailers(t *testing.T) {
	a, r, err := read(t, "HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: v\r\n\r\nNEXT")
	if err != nil {
		t.Fatal(err)
	}
	if a.status != 429 || a.queueMs != -1 || !a.reusable {
		t.Fatalf("got %+v", a)
	}
	rest, _ := r.ReadString(0)
	if rest != "NEXT" {
		t.Fatalf("the body was not read whole: %q left", rest)
	}
}

func TestAnswerThatClosesIsNotReused(t *testing.T) {
	for _, text := range []string{
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
		// No length: the body runs to the end of the connection.
		"HTTP/1.1 200 OK\r\n\r\nuntil the end",
	} {
		a, _, err := read(t, text)
		if err != nil {
			t.Fatal(err)
		}
		if a.reusable {
			t.Fatalf("%q: reusable", text)
		}
	}
}

func TestMalformedAnswerIsAnError(t *testing.T) {
	for _, text := range []string{
		"SMTP ready\r\n\r\n",
		"HTTP/1.1 2xx OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	} {
		if _, _, err := read(t, text); !errors.Is(err, errMalformed) {
			t.Fatalf("%q: got %v", text, err)
		}
	}
}

func TestTruncatedAnswerIsAnError(t *testing.T) {
	if _, _, err := read(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"); err == nil {
		t.Fatal("a body shorter than its Content-Length was taken whole")
	}
}

func TestAnswersWithoutBodyLeaveTheConnectionReusable(t *testing.T) {
	for _, text := range []string{
		"HTTP/1.1 204 No Content\r\n\r\nNEXT",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\nNEXT",
	} {
		a, r, err := read(t, text)
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := r.ReadString(0)
		if !a.reusable || rest != "NEXT" {
			t.Fatalf("%q: reusable %v, %q left", text, a.reusable, rest)
		}
	}
}
