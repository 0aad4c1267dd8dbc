package binlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/dualwrite/dualwrite/internal/servertest"
)

func testAddr() string {
	if a := os.Getenv("DW_MYSQL_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:3306"
}

// TestDumpReadsRowEvents runs a real dump against the local server: it
// authenticates, registers, dumps from the current end and decodes the
// events of one insert.
func TestDumpReadsRowEvents(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("mysql", "root@tcp("+testAddr()+")/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.PingContext(ctx); err != nil {
		servertest.Missing(t, "no MySQL server at %s: %v", testAddr(), err)
	}
	name := fmt.Sprintf("dw_test_%08x", rand.Uint32())
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	// Registered after Close, so it runs before it.
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE " + name); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+name+".t (id int primary key, v varchar(20), d decimal(10,2))"); err != nil {
		t.Fatal(err)
	}
	var file string
	var pos uint32
	var x1, x2, x3 any
	row := db.QueryRowContext(ctx, "SHOW MASTER STATUS")
	if err := row.Scan(&file, &pos, &x1, &x2); err != nil {
		if err := db.QueryRowContext(ctx, "SHOW MASTER STATUS").Scan(&file, &pos, &x1, &x2, &x3); err != nil {
			t.Fatalf("show master status: %v", err)
		}
	}
	c, err := Dial(ctx, Config{Addr: testAddr(), User: "root", ServerID: 4000000000 + rand.Uint32N(1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartDump(file, pos); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+name+".t VALUES (7, 'héllo 😀', -12.5)"); err != nil {
		t.Fatal(err)
	}
	go func() { <-ctx.Done(); c.Close() }()
	var sawXID bool
	var rows *Rows
	for !sawXID {
		ev, err := c.ReadEvent()
		if err != nil {
			t.Fatal(err)
		}
		switch b := ev.Body.(type) {
		case *Rows:
			if b.Table.Schema == name {
				rows = b
			}
		case *XID:
			sawXID = rows != nil
		}
	}
	if rows == nil || rows.Kind != RowsInsert || len(rows.Rows) != 1 {
		t.Fatalf("rows = %+v", rows)
	}
	got := rows.Rows[0]
	if got[0] != int64(7) || string(got[1].([]byte)) != "héllo 😀" || fmt.Sprint(got[2]) != "-12.50" {
		t.Fatalf("row = %#v", got)
	}
}

func TestDumpMissingFile(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, Config{Addr: testAddr(), User: "root", ServerID: 4000000000 + rand.Uint32N(1<<20)})
	if err != nil {
		servertest.Missing(t, "no MySQL server at %s: %v", testAddr(), err)
	}
	defer c.Close()
	if err := c.StartDump("mysql-bin.999999", 4); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := c.ReadEvent()
		var se *ServerError
		if errors.As(err, &se) {
			if se.Code != 1236 {
				t.Fatalf("error code %d, want 1236: %v", se.Code, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestDialWrongPassword(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Dial(ctx, Config{Addr: testAddr(), User: "root", Password: "definitely-wrong", ServerID: 4000000000 + rand.Uint32N(1<<20)})
	var se *ServerError
	if !errors.As(err, &se) || se.Code != 1045 {
		t.Fatalf("err = %v, want server error 1045", err)
	}
}
