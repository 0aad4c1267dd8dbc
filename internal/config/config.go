// Package config is the typed configuration of a dualwrite link: the two
// sides, the engine settings and the table maps. Only this package reads
// configuration files and the environment.
package config

import (
	"strings"
	"time"
)

// Pos is a place in the configuration file, for messages.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// Config is one configuration file.
type Config struct {
	Link   Link   `yaml:"link"`
	Engine Engine `yaml:"engine"`
	Maps   []Map  `yaml:"maps"`
	// Notify holds the alert channels (alert.go).
	Notify Notify `yaml:"notify"`
	// File is the path the configuration was loaded from.
	File string `yaml:"-"`
	// positions holds the line and column of every value in the file by
	// its path ("maps[2].columns[1].right"); see PosOf.
	positions map[string]Pos
}

// Link pairs two sides.
type Link struct {
	Name  string `yaml:"name"`
	Left  Side   `yaml:"left"`
	Right Side   `yaml:"right"`
	Pos   Pos    `yaml:"-"`
}

// Side is one database.
type Side struct {
	// Name identifies the side in commands and logs, e.g. "erp".
	Name string `yaml:"name"`
	// Driver is "sqlite", "postgres" or "mysql".
	Driver string `yaml:"driver"`
	// DSN is the driver's connection string. ${VAR} is expanded from the
	// environment.
	DSN string `yaml:"dsn"`
	Pos Pos    `yaml:"-"`
}

// Engine holds engine-wide settings. Zero values take the defaults below.
type Engine struct {
	// DataDir holds the control store and the durable queue. Default:
	// ".dualwrite" beside the configuration file.
	DataDir string `yaml:"data_dir"`
	// Listen is the address of the HTTP API, the web workspace and the
	// metrics. Default "127.0.0.1:7070". An address other than loopback
	// needs TLS (TLSCert and TLSKey) or InsecureListen.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files of the server's certificate (chain)
	// and private key. When both are set the engine serves HTTPS. Relative
	// paths are resolved beside the configuration file.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// InsecureListen allows a non-loopback Listen without TLS, where the
	// network between the operators and the engine is trusted (or TLS ends
	// at a proxy in front). Tokens and session cookies then cross it in
	// clear text. Default false.
	InsecureListen bool `yaml:"insecure_listen"`
	// TrustedOrigins are origins ("https://dw.example.com") besides the
	// engine's own address from which browsers may change state: the
	// public address of a reverse proxy that rewrites the Host header.
	TrustedOrigins []string `yaml:"trusted_origins"`
	// QueueRetention is how long a paused map's queued changes are kept.
	// Default 24h.
	QueueRetention Duration `yaml:"queue_retention"`
	// QueueWarnAt is the queue age at which a warning is logged. Default
	// 75% of QueueRetention.
	QueueWarnAt Duration `yaml:"queue_warn_at"`
	// PollInterval is how often trigger-based capture (SQLite) polls its
	// change table. Default 50ms.
	PollInterval Duration `yaml:"poll_interval"`
	// QueueURL is an external NATS server for the durable queue. Empty
	// (the default) runs NATS JetStream embedded in the engine process.
	QueueURL string `yaml:"queue_url"`
	// ChunkSize is the number of rows an initial sync reads at a time.
	// Default 1000.
	ChunkSize int `yaml:"chunk_size"`
	// GroupTransactions is how many consecutive source transactions, already
	// waiting when one is applied, may commit together in one target
	// transaction (each stays whole; at most 300 changes in all). 1 applies
	// every source transaction in its own target transaction. Default 300.
	GroupTransactions int `yaml:"group_transactions"`
	// RetainedWALWarn is the replication-slot retained log size, in bytes,
	// above which a warning is given. Default 1 GiB.
	RetainedLogWarn int64 `yaml:"retained_log_warn"`
}

// Default values.
const (
	DefaultListen          = "127.0.0.1:7070"
	DefaultQueueRetention  = 24 * time.Hour
	DefaultPollInterval    = 50 * time.Millisecond
	DefaultChunkSize       = 1000
	DefaultGroupTxs        = 300
	DefaultRetainedLogWarn = 1 << 30
)

// Duration is a time.Duration written as "24h", "500ms".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Direction says which way data flows.
type Direction string

const (
	Both        Direction = "both"
	LeftToRight Direction = "left_to_right"
	RightToLeft Direction = "right_to_left"
)

// OnTruncate is what a map does when one of its tables is truncated.
type OnTruncate string

const (
	// TruncateStop stops the map (Not running) with DW2011, for a person
	// to decide. The default: docs/adr/20261204-truncate-per-map.md.
	TruncateStop OnTruncate = "stop"
	// TruncateResync stops the map and runs it again with initial sync.
	TruncateResync OnTruncate = "resync"
	// TruncatePropagate deletes every row of the other side's table that
	// is within the map's filter, in one target transaction.
	TruncatePropagate OnTruncate = "propagate"
)

// Map is a table map.
type Map struct {
	Name  string `yaml:"name"`
	Left  string `yaml:"left"`  // table on the left side
	Right string `yaml:"right"` // table on the right side
	// Direction of the whole map; default both. A column's direction must
	// fit inside it.
	Direction Direction `yaml:"direction"`
	// Master is the side whose values win in initial sync conflicts and
	// break ties in live conflicts: "left", "right" or a side name.
	// Default "right".
	Master string `yaml:"master"`
	// InitialSync copies pre-existing rows on Run; default true.
	InitialSync *bool `yaml:"initial_sync"`
	// OnTruncate says what a TRUNCATE of one of the map's tables does:
	// stop the map (default), resync it, or propagate the truncate to the
	// other side's rows within the map's filter.
	OnTruncate OnTruncate `yaml:"on_truncate"`
	// Order places the map among others where dependencies allow; lower
	// first. Default: the map's position in the file.
	Order     int         `yaml:"order"`
	DependsOn []string    `yaml:"depends_on"`
	Key       []KeyColumn `yaml:"key"`
	Columns   []ColumnMap `yaml:"columns"`
	Lookups   []Lookup    `yaml:"lookups"`
	Filter    Filter      `yaml:"filter"`
	// Alerts are the map's alert rules (alert.go); none by default.
	Alerts []AlertRule `yaml:"alerts"`
	Pos    Pos         `yaml:"-"`
}

// KeyColumn is one entry of the integration key: usually one column on
// each side; a reference that is part of the key (an order line keyed by
// its order) may have several columns on one side, paired through the
// lookup that maps them.
type KeyColumn struct {
	Left  Columns `yaml:"left"`
	Right Columns `yaml:"right"`
	// Company marks the legal-entity column: initial sync runs per value,
	// and lookups into company-keyed maps resolve within the row's
	// company. Only on a one-column entry.
	Company bool `yaml:"company"`
	Pos     Pos  `yaml:"-"`
}

// ColumnMap maps one column pair.
type ColumnMap struct {
	// Left and Right are column names. One may be empty when the value is
	// produced by Default or an expression only.
	Left      string    `yaml:"left"`
	Right     string    `yaml:"right"`
	Direction Direction `yaml:"direction"` // default both
	// Default is written when the source value is NULL or there is no
	// source column. HasDefault tells an explicit null from no default.
	Default    any  `yaml:"default"`
	HasDefault bool `yaml:"-"`
	// ValueMap maps left values to right values, and back. Keys and values
	// are compared as text.
	ValueMap map[string]string `yaml:"value_map"`
	// ValueMapPairs holds ValueMap in file order.
	ValueMapPairs [][2]string `yaml:"-"`
	// LeftToRight and RightToLeft are expressions computing the target
	// value from the source row (see docs/CONFIG.md for the language).
	LeftToRight string `yaml:"left_to_right"`
	RightToLeft string `yaml:"right_to_left"`
	Pos         Pos    `yaml:"-"`
}

// Lookup maps a column that references another table on its own side
// through that table's map's integration key.
type Lookup struct {
	// Map is the related map whose tables are referenced.
	Map string `yaml:"map"`
	// Left and Right are this map's referencing columns: one, or several
	// for a composite reference (left: [dataareaid, salesid]).
	Left  Columns `yaml:"left"`
	Right Columns `yaml:"right"`
	// LeftRef and RightRef are the referenced columns in the related
	// map's tables, as many as the referencing columns. Default: the
	// related map's key columns on that side when they are as many (the
	// company column left out when the lookup is company-scoped), else
	// the table's primary key.
	LeftRef   Columns   `yaml:"left_ref"`
	RightRef  Columns   `yaml:"right_ref"`
	Direction Direction `yaml:"direction"` // default both
	Pos       Pos       `yaml:"-"`
}

// Filter holds a boolean expression per side; a source row is synced only
// when its side's filter is true. Empty means every row.
type Filter struct {
	Left  string `yaml:"left"`
	Right string `yaml:"right"`
	Pos   Pos    `yaml:"-"`
}

// Columns is a list of column names, written in YAML as one name or a
// list of names.
type Columns []string

// String renders one column as its name and several as [a, b].
func (c Columns) String() string {
	if len(c) == 1 {
		return c[0]
	}
	return "[" + strings.Join(c, ", ") + "]"
}

// Equal reports whether c and o name the same columns in the same order.
func (c Columns) Equal(o Columns) bool {
	if len(c) != len(o) {
		return false
	}
	for i := range c {
		if c[i] != o[i] {
			return false
		}
	}
	return true
}

// One returns the only column, or "" when there are none or several.
func (c Columns) One() string {
	if len(c) == 1 {
		return c[0]
	}
	return ""
}

// CompanyColumn returns the map's company key column on side ("left" or
// "right"), or "".
func (m *Map) CompanyColumn(side string) string {
	for _, k := range m.Key {
		if !k.Company {
			continue
		}
		if side == "left" {
			return k.Left.One()
		}
		return k.Right.One()
	}
	return ""
}
