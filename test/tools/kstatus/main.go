// kstatus reads Kubernetes objects as JSON (a JSON array on stdin) and prints,
// for each, the status the real kstatus library computes — what Flux, the
// cli-utils appliers and kpt wait for — as a JSON array of
// {"status": ..., "message": ...}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	// utiljson decodes whole numbers as int64, as unstructured objects hold them.
	var objects []map[string]any
	in, err := io.ReadAll(os.Stdin)
	if err == nil {
		err = utiljson.Unmarshal(in, &objects)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading a JSON array of objects from stdin:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(objects))
	for i, o := range objects {
		r, err := status.Compute(&unstructured.Unstructured{Object: o})
		if err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: object %d: %v\n", i, err)
			os.Exit(1)
		}
		out = append(out, result{Status: string(r.Status), Message: r.Message})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
