package sidekiq

import (
	"context"
	"fmt"
)

// Service is a background component that lives and dies with a Server: a periodic-job
// scheduler, a message-bus heartbeat, a metrics exporter. Register it with
// Server.AddService before Start.
type Service interface {
	// Start is called by Server.Start once the process is registered (its first heartbeat
	// is written), in the order services were added. It must return promptly, leaving its
	// work to goroutines of its own. An error fails Server.Start, which then stops the
	// services already started.
	Start(ctx context.Context) error
	// Stop is called by Server.Stop as soon as the server quiets, in reverse order, with
	// Stop's context: the service should end its work and return by ctx's deadline.
	Stop(ctx context.Context) error
}

// AddService registers svc to start and stop with the server. Call it before Start.
func (s *Server) AddService(svc Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic("sidekiq: AddService after Start")
	}
	if svc == nil {
		panic("sidekiq: AddService(nil)")
	}
	s.services = append(s.services, svc)
}

// Observe registers observers of the server's jobs, fetches and Redis errors (for metrics).
// Call it before Start.
func (s *Server) Observe(obs ...Observer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic("sidekiq: Observe after Start")
	}
	for _, o := range obs {
		if o == nil {
			panic("sidekiq: Observe(nil)")
		}
		s.observers = append(s.observers, o)
	}
}

// startServices starts the registered services; on an error it stops those already
// started and returns it.
func (s *Server) startServices(ctx context.Context) error {
	for i, svc := range s.services {
		if err := svc.Start(ctx); err != nil {
			s.stopServices(ctx, s.services[:i])
			return fmt.Errorf("sidekiq: starting service %T: %w", svc, err)
		}
	}
	return nil
}

// stopServices stops services in reverse order, logging errors.
func (s *Server) stopServices(ctx context.Context, svcs []Service) error {
	var first error
	for i := len(svcs) - 1; i >= 0; i-- {
		if err := svcs[i].Stop(ctx); err != nil && first == nil {
			first = fmt.Errorf("sidekiq: stopping service %T: %w", svcs[i], err)
		}
	}
	return first
}
