package sidekiq

import "github.com/redis/go-redis/v9"

// The accessors below let packages that attach to a Server (the bus) reach the same Redis
// database and key namespace as the server, without a second configuration that could
// disagree with it.

// Redis returns the Redis client the server works.
func (s *Server) Redis() redis.UniversalClient { return s.rdb }

// Namespace returns Config.Namespace: the server's keys start with "<Namespace>:" when it
// is not empty.
func (s *Server) Namespace() string { return s.cfg.Namespace }
