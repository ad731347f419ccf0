package fairlane_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The repository root, from sdk/go.
var repo, _ = filepath.Abs(filepath.Join("..", ".."))

// Keys of spec/test-vectors/fairlane.yaml (the demo key is also examples/quickstart.yaml's).
const (
	demoKey    = "fl_demo_quickstart"
	instantKey = "fl_sdk_instant"
)

// fairlaneURL is the proxy port the tests use; upstream is nil when FAIRLANE_URL named a
// Fairlane the tests did not start.
var (
	fairlaneURL string
	upstream    *recorder
)

func readVectors(t *testing.T, name string, into any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "spec", "test-vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatal(err)
	}
}

// seen is what the upstream received of one request.
type seen struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// recorder is a loopback upstream that records every request and echoes it as JSON, or
// answers as its behave function says.
type recorder struct {
	mu       sync.Mutex
	requests []seen
	behave   func(seen, http.ResponseWriter) bool
	server   *httptest.Server
}

func startRecorder() *recorder {
	r := &recorder{}
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		s := seen{req.Method, req.URL.RequestURI(), req.Header.Clone(), body}
		r.mu.Lock()
		r.requests = append(r.requests, s)
		behave := r.behave
		r.mu.Unlock()
		if behave != nil && behave(s, w) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"method": s.Method, "url": s.Path})
	}))
	return r
}

// reset forgets what was received and echoes again; tests that change behave call it.
func (r *recorder) reset(behave func(seen, http.ResponseWriter) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests, r.behave = nil, behave
}

func (r *recorder) received(path string) []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found []seen
	for _, s := range r.requests {
		if path == "" || s.Path == path {
			found = append(found, s)
		}
	}
	return found
}

// ownServer skips a test that needs the Fairlane and upstream these tests start (its keys,
// what the upstream received) when FAIRLANE_URL named another one.
func ownServer(t *testing.T) {
	t.Helper()
	if upstream == nil {
		t.Skip("needs the Fairlane the tests start (FAIRLANE_URL is set)")
	}
}

// startFairlane runs a real Fairlane, embedded, in its own process as `fairlane start`
// does: a config of spec/test-vectors on free ports, with a new data directory, env for its
// references. It returns the proxy URL and a function that stops it.
func startFairlane(config string, env ...string) (string, func(), error) {
	node := os.Getenv("FAIRLANE_NODE")
	if node == "" {
		node = filepath.Join(repo, "node_modules", ".bin", "node")
	}
	dataDir, err := os.MkdirTemp("", "fairlane-go-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(node, "--conditions=development",
		filepath.Join(repo, "services", "fairlane", "src", "main.ts"),
		"start", "--config", filepath.Join(repo, "spec", "test-vectors", config))
	cmd.Env = append(os.Environ(), append(env,
		"FAIRLANE_PORT=0", "FAIRLANE_ADMIN_PORT=0", "FAIRLANE_DATA_DIR="+dataDir)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		os.RemoveAll(dataDir)
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if !strings.Contains(lines.Text(), `"fairlane started"`) {
			continue
		}
		var started struct{ Proxy string }
		if err := json.Unmarshal(lines.Bytes(), &started); err != nil {
			stop()
			return "", nil, err
		}
		// Every later line is read, so a full pipe never blocks the server's logging.
		go io.Copy(io.Discard, stdout)
		return started.Proxy, stop, nil
	}
	stop()
	return "", nil, fmt.Errorf("fairlane exited before it started")
}

func TestMain(m *testing.M) {
	if fairlaneURL = os.Getenv("FAIRLANE_URL"); fairlaneURL != "" {
		os.Exit(m.Run())
	}
	upstream = startRecorder()
	url, stop, err := startFairlane("fairlane.yaml", "ECHO_URL="+upstream.server.URL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fairlaneURL = url
	code := m.Run()
	stop()
	upstream.server.Close()
	os.Exit(code)
}

// within bounds a wait generously: the machine is shared.
const within = 20 * time.Second
