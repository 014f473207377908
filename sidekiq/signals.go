package sidekiq

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// RunWithSignals runs srv until ctx ends or the process receives SIGTERM or SIGINT, which
// stop it as Sidekiq does (quiet, wait up to ShutdownTimeout, push unfinished jobs back).
// SIGTSTP quiets it. It is a convenience for main packages; the Server itself never
// installs signal handlers.
func RunWithSignals(ctx context.Context, srv *Server) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	tstp := make(chan os.Signal, 1)
	signal.Notify(tstp, syscall.SIGTSTP)
	defer signal.Stop(tstp)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-tstp:
			srv.Quiet()
		case <-finished:
		}
	}()
	return srv.Run(ctx)
}
