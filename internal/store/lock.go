package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dualwrite/dualwrite/internal/problem"
)

// LockFile is the name of the data directory's lock file.
const LockFile = "engine.lock"

// DirLock is an exclusive lock on a data directory: one engine per
// control store. The OS releases it when the process ends, however it ends.
type DirLock struct {
	f *os.File
}

// LockDir takes the exclusive lock of dir (creating dir if needed) and
// writes this process's pid into the lock file. When another process holds
// it, the error is DW2040 naming dir and the holder's pid.
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	// Invariant: one engine per data directory; the lock is taken before
	// anything in the directory or the databases is touched.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			abs, _ := filepath.Abs(dir)
			return nil, problem.New(problem.DataDirLocked, "data directory %s is in use by another dualwrite engine (pid %s); stop that process, or give this configuration another engine.data_dir", abs, pid)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("write lock file %s: %w", path, err)
		}
	}
	return &DirLock{f: f}, nil
}

// Unlock releases the lock. It is idempotent.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}
