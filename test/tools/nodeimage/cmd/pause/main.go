// pause: the real node's sandbox process. It sleeps until SIGTERM or SIGINT and
// exits 0, which is all a Pod sandbox's process has to do (no image can be
// pulled here, so containerd's sandbox_image is built from this).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
