package store

import "time"

// DiskWriteTime is the time bbolt has spent so far writing committed
// transactions to the file: dirty pages, meta page, and the fdatasync after
// each, summed over every commit since Open.
func (s *Store) DiskWriteTime() time.Duration {
	stats := s.db.Stats()
	return stats.TxStats.GetWriteTime()
}
