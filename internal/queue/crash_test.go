package queue

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const crashDirEnv = "DW_QUEUE_CRASH_DIR"

// TestCrashChild is the child process of TestCrashDurability: it appends
// until killed and prints every acknowledged sequence. It does nothing in a
// normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashDurability")
	}
	q, err := Open(context.Background(), Options{Dir: dir, Prefix: "CRASH"})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	defer q.Close()
	for lsn := uint64(1); ; lsn++ {
		seq, err := q.Append(context.Background(), entry("m", "erp", lsn))
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(2)
		}
		// Unbuffered: the parent sees the line as soon as Append returned.
		fmt.Printf("ack %d %d\n", seq, lsn)
	}
}

// TestCrashDurability kills a process that is appending (kill -9, no
// shutdown of the embedded server) and checks that every entry it saw
// acknowledged is in the queue after a restart, in order.
func TestCrashDurability(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "queue")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 300
	var acked [][2]uint64 // seq, lsn
	sc := bufio.NewScanner(out)
	for len(acked) < killAfter && sc.Scan() {
		var seq, lsn uint64
		if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &seq, &lsn); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %q", sc.Text())
		}
		acked = append(acked, [2]uint64{seq, lsn})
	}
	// Kill mid-append: the child is still appending. Lines it printed after
	// the kill decision are acknowledged too, so read them all.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		var seq, lsn uint64
		if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &seq, &lsn); err == nil {
			acked = append(acked, [2]uint64{seq, lsn})
		}
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("child exited cleanly; it should have been killed")
	}
	if len(acked) < killAfter {
		t.Fatalf("child acknowledged only %d entries before it stopped", len(acked))
	}

	q := open(t, Options{Dir: dir, Prefix: "CRASH"})
	got := mustRead(t, q, "m", 0, len(acked)+100)
	if len(got) < len(acked) {
		t.Fatalf("after kill -9: %d entries, %d were acknowledged", len(got), len(acked))
	}
	for i, a := range acked {
		if got[i].Seq != a[0] || got[i].Tx.Position.LSN != a[1] {
			t.Fatalf("entry %d: seq %d LSN %d, acknowledged as seq %d LSN %d", i, got[i].Seq, got[i].Tx.Position.LSN, a[0], a[1])
		}
		checkEntry(t, got[i], entry("m", "erp", a[1]), a[0])
	}
	// The queue goes on where it stopped.
	next := got[len(got)-1]
	seq := mustAppend(t, q, entry("m", "erp", next.Tx.Position.LSN+1))
	if seq != next.Seq+1 {
		t.Errorf("append after the crash: seq %d, want %d", seq, next.Seq+1)
	}
	t.Logf("%d entries acknowledged before kill -9, %d found", len(acked), len(got))
}
