package live

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/fleet/internal/geoindex"
)

// Start rebuilds the index from the database (every driver online, at its last
// checkpointed position) and starts the loop that moves buffered positions into
// the index and the one that checkpoints them.
func (s *Service) Start(ctx context.Context) error {
	rows, err := s.repo.online(ctx, s.db)
	if err != nil {
		return err
	}
	for _, r := range rows {
		s.idx.Put(r.driver())
	}
	s.idx.TakeDirty() // what was just loaded is saved already
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.run(s.stop)
	if len(rows) > 0 {
		s.log.Info("fleet index restored", "drivers", len(rows))
	}
	return nil
}

// Stop stops the loops, applies the positions still buffered and saves the last
// positions (the final checkpoint), within ctx's deadline. Stopping again does
// nothing.
func (s *Service) Stop(ctx context.Context) error {
	if s.stop == nil {
		return nil
	}
	close(s.stop)
	s.stop = nil
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.applyPending()
	return s.Checkpoint(ctx)
}

// run applies buffered positions as soon as they come, until Stop. Checkpoints
// run on a loop of their own: a checkpoint writes every moved driver's position to
// the database, which takes long enough (hundreds of milliseconds for 10,000
// drivers on SQLite) that positions waiting behind it would be late in the index
// (and conflated meanwhile).
func (s *Service) run(stop <-chan struct{}) {
	defer close(s.done)
	var checkpoints sync.WaitGroup
	defer checkpoints.Wait()
	checkpoints.Go(func() { s.checkpointLoop(stop) })
	for {
		select {
		case <-stop:
			return
		case <-s.in.Wake():
			s.applyPending()
		}
	}
}

// checkpointLoop checkpoints on its ticker until Stop.
func (s *Service) checkpointLoop(stop <-chan struct{}) {
	t := time.NewTicker(s.opts.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.CheckpointEvery)
			if err := s.Checkpoint(ctx); err != nil {
				s.log.Warn("fleet checkpoint failed; retrying at the next", "err", err)
			}
			cancel()
		}
	}
}

// applyPending moves what the buffer holds into the index and records how long
// each position took from receipt to visible.
func (s *Service) applyPending() {
	taken := s.in.Take()
	if len(taken) == 0 {
		return
	}
	moves := make([]geoindex.Move, len(taken))
	for i, p := range taken {
		moves[i] = p.Move
	}
	s.idx.Apply(moves)
	now := time.Now()
	for _, p := range taken {
		s.metrics.visible.Observe(now.Sub(p.Received).Seconds())
	}
}

// ApplyPending moves the buffered positions into the index now, for tests and
// benchmarks that do not run the loop.
func (s *Service) ApplyPending() { s.applyPending() }

// Checkpoint saves the positions of the drivers who moved since the last
// checkpoint, in one transaction; nothing is written when no one moved. A failed
// checkpoint leaves them to the next.
func (s *Service) Checkpoint(ctx context.Context) error {
	moved := s.idx.TakeDirty()
	if len(moved) == 0 {
		return nil
	}
	err := store.InTx(ctx, s.db, func(tx *store.Tx) error { return s.repo.savePositions(ctx, tx, moved) })
	if err != nil {
		ids := make([]string, len(moved))
		for i, d := range moved {
			ids[i] = d.ID
		}
		s.idx.MarkDirty(ids)
		return fmt.Errorf("fleet: checkpoint %d positions: %w", len(moved), err)
	}
	s.metrics.checkpointed.Add(float64(len(moved)))
	return nil
}
