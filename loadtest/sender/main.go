// Command sender is an open-loop load generator for the benches (`npm run bench -- --sender
// go`): GET requests at a fixed rate whatever the answers, and what came back in a measured
// window. It reads its plan as JSON on stdin and writes one JSON event per line on stdout
// (loadtest/bench/lib/go-sender.ts drives it; docs/performance.md says why it exists).
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	var p plan
	decoder := json.NewDecoder(os.Stdin)
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&p); err != nil {
		fmt.Fprintln(os.Stderr, "sender: the plan on stdin:", err)
		os.Exit(2)
	}
	if err := run(p, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sender:", err)
		os.Exit(1)
	}
}
