// clientgo-elector is the peer baseline for the failover benchmark: one
// client-go tools/leaderelection elector (LeaseLock, the core components'
// 15 s / 10 s / 2 s timings, ReleaseOnCancel) that prints one JSON line per
// event on stdout. SIGTERM or SIGINT cancels its context, which releases the
// Lease if it holds it, then it exits. It is never part of the product.
//
//	clientgo-elector --kubeconfig=FILE --identity=ID [--namespace=default] [--name=bench-lease]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

var outMu sync.Mutex

func emit(event, identity string, extra map[string]any) {
	m := map[string]any{"event": event, "identity": identity, "t": time.Now().UnixMilli()}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintln(os.Stdout, string(b))
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	identity := flag.String("identity", "", "holder identity (required)")
	namespace := flag.String("namespace", "default", "namespace of the Lease")
	name := flag.String("name", "bench-lease", "name of the Lease")
	leaseDuration := flag.Duration("lease-duration", 15*time.Second, "lease duration")
	renewDeadline := flag.Duration("renew-deadline", 10*time.Second, "renew deadline")
	retryPeriod := flag.Duration("retry-period", 2*time.Second, "retry period")
	klog.InitFlags(nil)
	flag.Parse()
	if *identity == "" {
		fmt.Fprintln(os.Stderr, "--identity is required")
		os.Exit(2)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		emit("error", *identity, map[string]any{"error": err.Error()})
		os.Exit(1)
	}
	cfg.UserAgent = "clientgo-elector/" + *identity
	client := kubernetes.NewForConfigOrDie(cfg)

	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		emit("signal", *identity, map[string]any{"signal": s.String()})
		cancel()
	}()

	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: *namespace, Name: *name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: *identity},
	}
	emit("ready", *identity, map[string]any{"pid": os.Getpid()})
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   *leaseDuration,
		RenewDeadline:   *renewDeadline,
		RetryPeriod:     *retryPeriod,
		ReleaseOnCancel: true,
		Name:            *name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				emit("started_leading", *identity, nil)
				<-ctx.Done()
			},
			OnStoppedLeading: func() {
				emit("stopped_leading", *identity, nil)
			},
			OnNewLeader: func(holder string) {
				emit("new_leader", *identity, map[string]any{"holder": holder})
			},
		},
	})
	emit("exit", *identity, nil)
}
