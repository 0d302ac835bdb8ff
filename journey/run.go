package journey

import (
	"context"
	"time"
)

// retentionInterval is how often old contact texts are dropped.
const retentionInterval = 24 * time.Hour

// Run retrains the model and applies text retention at start, then
// retrains every RetrainInterval and applies retention daily, until ctx
// ends.
func (j *Journey) Run(ctx context.Context) error {
	train := time.NewTimer(0)
	defer train.Stop()
	retain := time.NewTimer(0)
	defer retain.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-train.C:
			if err := j.Retrain(ctx); err != nil && ctx.Err() == nil {
				j.deps.Logger.Error("retraining failed; the previous model stays", "err", err)
				if j.metrics != nil {
					j.metrics.trainErrors.Inc()
				}
			}
			train.Reset(j.cfg.RetrainInterval)
		case <-retain.C:
			j.applyRetention(ctx)
			retain.Reset(retentionInterval)
		}
	}
}

// applyRetention drops contact texts older than TextRetention.
func (j *Journey) applyRetention(ctx context.Context) {
	if j.cfg.TextRetention <= 0 {
		return
	}
	n, err := j.deps.Store.DropContactTexts(ctx, j.deps.Now().Add(-j.cfg.TextRetention))
	if j.metrics != nil {
		j.metrics.textsDropped.Add(float64(n))
	}
	if err != nil && ctx.Err() == nil {
		j.deps.Logger.Error("text retention failed; retried tomorrow", "dropped", n, "err", err)
		return
	}
	if n > 0 {
		j.deps.Logger.Info("text retention: contact texts dropped", "dropped", n, "older_than", j.cfg.TextRetention)
	}
}
