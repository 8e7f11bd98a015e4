// Command floor sends the requests of a no-op preview and nothing else, as
// fast as the API server takes them: one list per kind and namespace, and
// one server-side apply dry run per object (field manager echo-iac), from
// a pool of -concurrency workers on client-go. It compares nothing and
// keeps nothing, so its wall time is the floor under any tool that checks
// those objects the same way. Built and run by bench/bench.py; see
// bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

type request struct {
	gvr schema.GroupVersionResource
	obj *unstructured.Unstructured // nil: list gvr in namespace
	ns  string
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	kubeContext := flag.String("context", "", "kubeconfig context")
	file := flag.String("f", "", "manifest: YAML documents, as `echo-iac render` prints them")
	concurrency := flag.Int("concurrency", 16, "requests in flight at once")
	flag.Parse()
	if err := run(*kubeconfig, *kubeContext, *file, *concurrency); err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		os.Exit(1)
	}
}

func run(kubeconfig, kubeContext, file string, concurrency int) error {
	if file == "" || concurrency < 1 {
		return errors.New("usage: floor -kubeconfig FILE -context NAME -f MANIFEST -concurrency N")
	}
	objects, err := readManifest(file)
	if err != nil {
		return err
	}
	config, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return err
	}
	// client-go limits itself to 5 requests a second by default; a negative
	// QPS turns the limiter off, which is the point of a floor.
	config.QPS = -1
	config.UserAgent = "echo-iac-bench-floor"
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		return err
	}

	var requests []request
	lists := map[string]bool{}
	for _, obj := range objects {
		gvr := resourceOf(obj)
		key := gvr.String() + "/" + obj.GetNamespace()
		if !lists[key] {
			lists[key] = true
			requests = append(requests, request{gvr: gvr, ns: obj.GetNamespace()})
		}
	}
	for _, obj := range objects {
		requests = append(requests, request{gvr: resourceOf(obj), obj: obj, ns: obj.GetNamespace()})
	}

	start := time.Now()
	work := make(chan request)
	errs := make(chan error, len(requests))
	var wg sync.WaitGroup
	for range min(concurrency, len(requests)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				if err := send(client, r); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, r := range requests {
		work <- r
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "floor: %d requests (%d lists, %d dry-run applies) at concurrency %d in %.1f ms\n",
		len(requests), len(lists), len(objects), concurrency, float64(time.Since(start).Microseconds())/1000)
	return nil
}

func send(client dynamic.Interface, r request) error {
	ctx := context.Background()
	api := client.Resource(r.gvr).Namespace(r.ns)
	if r.obj == nil {
		if _, err := api.List(ctx, metav1.ListOptions{}); err != nil {
			return fmt.Errorf("list %s in %s: %w", r.gvr.Resource, r.ns, err)
		}
		return nil
	}
	_, err := api.Apply(ctx, r.obj.GetName(), r.obj, metav1.ApplyOptions{
		FieldManager: "echo-iac",
		DryRun:       []string{metav1.DryRunAll},
	})
	if err != nil {
		return fmt.Errorf("dry-run apply %s %s/%s: %w", r.obj.GetKind(), r.ns, r.obj.GetName(), err)
	}
	return nil
}

// resourceOf maps a kind to its resource the way the API does for the kinds
// echo-iac renders (ConfigMap, Deployment, Service, Namespace): lower case
// plus "s". Discovery would cost requests the tools do not make either.
func resourceOf(obj *unstructured.Unstructured) schema.GroupVersionResource {
	gvk := obj.GroupVersionKind()
	return gvk.GroupVersion().WithResource(strings.ToLower(gvk.Kind) + "s")
}

func readManifest(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	decoder := yaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var doc map[string]any
		if err := decoder.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(doc) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: doc})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no objects", path)
	}
	return out, nil
}
