package redis

import (
	"context"
	"fmt"
	"log/slog"
)

// LogAdapter routes go-redis's internal log lines (dial failures, pool
// retries) to slog at debug level: during an outage they repeat, once per
// attempt, what the backend's own errors already report. Install it with
// goredis.SetLogger, which is process-wide.
type LogAdapter struct{ Logger *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (l LogAdapter) Printf(ctx context.Context, format string, v ...any) {
	l.Logger.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
