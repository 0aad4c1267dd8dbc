package config

// DefaultDataDir is the data directory's name beside the configuration
// file when engine.data_dir is not set.
const DefaultDataDir = ".dualwrite"

// ApplyDefaults fills every unset field with its documented default. Load
// and Parse call it; it is idempotent, so calling it again is harmless.
//
// Relative paths (data_dir, SQLite database files) are made absolute
// relative to the configuration file's directory.
func (c *Config) ApplyDefaults() {
	e := &c.Engine
	if e.DataDir == "" {
		e.DataDir = DefaultDataDir
	}
	e.DataDir = c.resolveFile(e.DataDir)
	if e.TLSCert != "" {
		e.TLSCert = c.resolveFile(e.TLSCert)
	}
	if e.TLSKey != "" {
		e.TLSKey = c.resolveFile(e.TLSKey)
	}
	if e.Listen == "" {
		e.Listen = DefaultListen
	}
	if e.QueueRetention == 0 {
		e.QueueRetention = Duration(DefaultQueueRetention)
	}
	if e.QueueWarnAt == 0 {
		e.QueueWarnAt = e.QueueRetention * 3 / 4
	}
	if e.PollInterval == 0 {
		e.PollInterval = Duration(DefaultPollInterval)
	}
	if e.ChunkSize == 0 {
		e.ChunkSize = DefaultChunkSize
	}
	if e.GroupTransactions == 0 {
		e.GroupTransactions = DefaultGroupTxs
	}
	if e.RetainedLogWarn == 0 {
		e.RetainedLogWarn = DefaultRetainedLogWarn
	}
	for _, s := range []*Side{&c.Link.Left, &c.Link.Right} {
		if s.Driver == "sqlite" {
			s.DSN = c.resolveSQLiteDSN(s.DSN)
		}
	}
	for i := range c.Maps {
		c.Maps[i].applyDefaults(i)
	}
	c.Notify.applyDefaults()
}

func (m *Map) applyDefaults(index int) {
	if m.Direction == "" {
		m.Direction = Both
	}
	if m.Master == "" {
		m.Master = "right"
	}
	if m.InitialSync == nil {
		yes := true
		m.InitialSync = &yes
	}
	if m.OnTruncate == "" {
		m.OnTruncate = TruncateStop
	}
	if m.Order == 0 {
		m.Order = index
	}
	for i := range m.Columns {
		col := &m.Columns[i]
		if col.Direction != "" {
			continue
		}
		switch {
		case col.Left == "" && col.Right != "" && m.Direction == Both:
			// A column with only a right side can only be written on
			// the right.
			col.Direction = LeftToRight
		case col.Right == "" && col.Left != "" && m.Direction == Both:
			col.Direction = RightToLeft
		default:
			col.Direction = m.Direction
		}
	}
	for i := range m.Alerts {
		m.Alerts[i].ApplyDefaults()
	}
	for i := range m.Lookups {
		if m.Lookups[i].Direction == "" {
			m.Lookups[i].Direction = m.Direction
		}
	}
}
