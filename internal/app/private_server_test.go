package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dualwrite/dualwrite/internal/servertest"
)

// Private servers: a PostgreSQL or MariaDB server of the test's own, in a
// temporary directory on a free port, that the test may crash and restart
// without disturbing the shared servers other tests use.

// privatePG is a PostgreSQL cluster owned by one test.
type privatePG struct {
	t    *testing.T
	bin  string // directory of initdb, pg_ctl and postgres
	dir  string // holds the data directory, the log and the unix socket
	port int
}

// pgBinDir finds the PostgreSQL server binaries, preferring version 15.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for _, d := range append([]string{"/usr/lib/postgresql/15/bin"}, dirs...) {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	return ""
}

// startPrivatePG initialises and starts a cluster ready for log-based
// capture (wal_level=logical, trust authentication) and stops it when the
// test ends. Without the server binaries the test is skipped, or fails in CI.
func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		servertest.Missing(t, "PostgreSQL server binaries (initdb, pg_ctl) are not installed under /usr/lib/postgresql/*/bin; a private server cannot be started")
	}
	// Not t.TempDir: its parent is private to root, and PostgreSQL runs as
	// the postgres user when the test runs as root.
	dir, err := os.MkdirTemp("", "dw-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &privatePG{t: t, bin: bin, dir: dir, port: freePort(t)}
	t.Cleanup(func() {
		// Immediate: nothing in it is worth a checkpoint.
		_ = pg.ctl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s to postgres: %v: %s", dir, err, out)
		}
	}
	if out, err := pg.command(filepath.Join(bin, "initdb"), "-D", pg.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 60
shared_buffers = 32MB
logging_collector = off
`, pg.port, dir)
	f, err := os.OpenFile(filepath.Join(pg.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.ctl("start"); err != nil {
		t.Fatal(err)
	}
	return pg
}

func (pg *privatePG) data() string { return filepath.Join(pg.dir, "data") }

// command runs a server program as the postgres user when the test is
// root (PostgreSQL refuses to run as root), else as the test's user.
func (pg *privatePG) command(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// ctl runs pg_ctl with the cluster's data directory and log, waiting for
// the operation to finish.
func (pg *privatePG) ctl(action string, args ...string) error {
	all := append([]string{action, "-D", pg.data(), "-l", filepath.Join(pg.dir, "server.log"), "-w", "-t", "60"}, args...)
	out, err := pg.command(filepath.Join(pg.bin, "pg_ctl"), all...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s\nserver log:\n%s", action, err, out, tail(filepath.Join(pg.dir, "server.log"), 20))
	}
	return nil
}

// restart restarts the server; mode "immediate" is a crash (no shutdown
// checkpoint, crash recovery at start), "fast" a clean shutdown that
// disconnects every session.
func (pg *privatePG) restart(mode string) {
	pg.t.Helper()
	if err := pg.ctl("restart", "-m", mode); err != nil {
		pg.t.Fatal(err)
	}
}

func (pg *privatePG) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s", pg.port, db)
}

// createDB creates a database on the private server and returns the
// engine's DSN and a connection as "the application".
func (pg *privatePG) createDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	name := fmt.Sprintf("dw_test_fault_%d", rand.Uint32())
	admin := openPGAdmin(t, pg.dsn("postgres"))
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database on the private server: %v", err)
	}
	app, err := sql.Open("pgx", pg.dsn(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return pg.dsn(name), app
}

// openPGAdmin connects to a PostgreSQL server's maintenance database.
func openPGAdmin(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// privateMariaDB is a MariaDB server owned by one test, run as a child
// process so that it can be killed with SIGKILL.
type privateMariaDB struct {
	t        *testing.T
	dir      string
	port     int
	serverID int
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the running mariadbd has exited
}

// startPrivateMariaDB installs a fresh data directory and starts mariadbd
// with the binary log as capture needs it (ROW, FULL images). root has an
// empty password over TCP. Without the binaries the test is skipped, or fails in CI.
func startPrivateMariaDB(t *testing.T) *privateMariaDB {
	t.Helper()
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		install, err = exec.LookPath("mysql_install_db")
	}
	if _, serr := os.Stat("/usr/sbin/mariadbd"); err != nil || serr != nil {
		servertest.Missing(t, "MariaDB server binaries (mariadb-install-db, /usr/sbin/mariadbd) are not installed; a private server cannot be started")
	}
	dir := t.TempDir()
	m := &privateMariaDB{t: t, dir: dir, port: freePort(t), serverID: 1000 + rand.IntN(100000)}
	if err := os.Mkdir(m.tmpdir(), 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--tmpdir=" + m.tmpdir(), "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", install, err, out)
	}
	t.Cleanup(m.kill)
	m.start()
	return m
}

// start runs mariadbd on the test's port and data directory and waits
// until it accepts connections.
func (m *privateMariaDB) start() {
	m.t.Helper()
	args := []string{
		"--no-defaults",
		"--datadir=" + filepath.Join(m.dir, "data"),
		// A temporary directory of its own: at start mariadbd deletes every
		// #sql* file in its tmpdir, and in the shared /tmp those include the
		// temporary tables the shared server is using (it then crashes).
		"--tmpdir=" + m.tmpdir(),
		"--port=" + strconv.Itoa(m.port),
		"--socket=" + filepath.Join(m.dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(m.dir, "mysqld.pid"),
		"--log-error=" + filepath.Join(m.dir, "error.log"),
		"--bind-address=127.0.0.1",
		"--skip-networking=0",
		"--log-bin=" + filepath.Join(m.dir, "data", "mysql-bin"),
		"--binlog-format=ROW",
		"--binlog-row-image=FULL",
		"--server-id=" + strconv.Itoa(m.serverID),
		"--innodb-buffer-pool-size=32M",
		"--max-connections=100",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	m.cmd = exec.Command("/usr/sbin/mariadbd", args...)
	// The server dies with the test process should the test be killed.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mariadbd: %v", err)
	}
	exited := make(chan struct{})
	go func(c *exec.Cmd) {
		_ = c.Wait()
		close(exited)
	}(m.cmd)
	m.exited = exited
	db, err := sql.Open("mysql", m.dsn(""))
	if err != nil {
		m.t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			m.t.Fatalf("mariadbd exited at start:\n%s", tail(filepath.Join(m.dir, "error.log"), 30))
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mariadbd did not accept connections: %v\n%s", err, tail(filepath.Join(m.dir, "error.log"), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends mariadbd with SIGKILL, as a crash would, and waits until it is
// gone.
func (m *privateMariaDB) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
	m.cmd = nil
}

func (m *privateMariaDB) tmpdir() string { return filepath.Join(m.dir, "tmp") }

func (m *privateMariaDB) dsn(db string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s", m.port, db)
}

// createDB creates a database and returns the engine's DSN and a
// connection as "the application".
func (m *privateMariaDB) createDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	name := fmt.Sprintf("dw_test_fault_%d", rand.Uint32())
	admin, err := sql.Open("mysql", m.dsn(""))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database on the private server: %v", err)
	}
	app, err := sql.Open("mysql", m.dsn(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return m.dsn(name), app
}

// freePort returns a TCP port on loopback that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
