// Package binlog is a minimal MySQL/MariaDB replication client: it speaks
// the client/server protocol far enough to authenticate, registers as a
// replica and reads the binary log event stream (COM_BINLOG_DUMP), and it
// decodes the events and row images dualwrite needs. It was written from
// the MariaDB and MySQL protocol documentation.
//
// Supported authentication: mysql_native_password (also after an auth
// switch request) and the fast path of caching_sha2_password (the server
// already caches the password's hash). The full caching_sha2_password
// exchange needs TLS or the server's RSA key and is not supported: a
// clear error says to use mysql_native_password for the replication user
// or to log in once with the mysql client so the hash gets cached.
package binlog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Capability flags of the client/server protocol.
const (
	capLongPassword    = 1 << 0
	capLongFlag        = 1 << 2
	capConnectWithDB   = 1 << 3
	capProtocol41      = 1 << 9
	capTransactions    = 1 << 13
	capSecureConn      = 1 << 15
	capMultiResults    = 1 << 17
	capPluginAuth      = 1 << 19
	capPluginAuthLenc  = 1 << 21
	capDeprecateEOF    = 1 << 24
	maxPacketPayload   = 1<<24 - 1
	comQuery           = 0x03
	comBinlogDump      = 0x12
	comRegisterReplica = 0x15
)

// ServerError is an ERR packet from the server.
type ServerError struct {
	Code     uint16
	SQLState string
	Message  string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("server error %d (%s): %s", e.Code, e.SQLState, e.Message)
}

// ErrUnsupportedAuth means the server asked for an authentication exchange
// this client does not implement.
var ErrUnsupportedAuth = errors.New("unsupported authentication exchange")

// Config says where and how to connect.
type Config struct {
	Addr     string // host:port
	User     string
	Password string
	// ServerID is this replica's server id; it must differ from the
	// server's and from every other replica's.
	ServerID uint32
	// Heartbeat asks the server for a heartbeat event when the log is idle
	// for this long. Zero means 1s.
	Heartbeat time.Duration
	// DialTimeout bounds connecting and authenticating. Zero means 10s.
	DialTimeout time.Duration
}

// Conn is one replication connection. It is not safe for concurrent use,
// except that Close may be called from another goroutine to unblock a read.
type Conn struct {
	nc        net.Conn
	r         *bufio.Reader
	seq       uint8
	caps      uint32
	version   string
	mariaDB   bool
	heartbeat time.Duration
	serverID  uint32
	connID    uint32
	// Parser state of the event stream.
	parser *Parser
}

// Dial connects, authenticates and prepares the session for a binlog dump.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	timeout := cfg.DialTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cfg.Addr, err)
	}
	c := &Conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), heartbeat: cfg.Heartbeat, serverID: cfg.ServerID}
	if c.heartbeat == 0 {
		c.heartbeat = time.Second
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = nc.SetDeadline(deadline)
	if err := c.handshake(cfg); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake with %s: %w", cfg.Addr, err)
	}
	if err := c.prepare(cfg); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// ConnectionID is the server's id of this connection (for KILL).
func (c *Conn) ConnectionID() uint32 { return c.connID }

// MariaDB reports whether the server is MariaDB.
func (c *Conn) MariaDB() bool { return c.mariaDB }

// ServerVersion is the version string from the handshake.
func (c *Conn) ServerVersion() string { return c.version }

// Close closes the network connection; a blocked read returns an error.
func (c *Conn) Close() error { return c.nc.Close() }

func (c *Conn) readPacket() ([]byte, error) {
	var out []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			return nil, err
		}
		n := int(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16)
		if hdr[3] != c.seq {
			return nil, fmt.Errorf("packet out of order: got sequence %d, want %d", hdr[3], c.seq)
		}
		c.seq++
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(c.r, out[start:]); err != nil {
			return nil, err
		}
		if n < maxPacketPayload {
			return out, nil
		}
	}
}

func (c *Conn) writePacket(payload []byte) error {
	for {
		n := len(payload)
		if n > maxPacketPayload {
			n = maxPacketPayload
		}
		buf := make([]byte, 4+n)
		buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), c.seq
		copy(buf[4:], payload[:n])
		c.seq++
		if _, err := c.nc.Write(buf); err != nil {
			return err
		}
		payload = payload[n:]
		if n < maxPacketPayload {
			return nil
		}
	}
}

func parseErr(p []byte) error {
	// 0xff, code<2>, ['#', sqlstate<5>], message
	if len(p) < 3 {
		return &ServerError{Message: "malformed error packet"}
	}
	e := &ServerError{Code: binary.LittleEndian.Uint16(p[1:3])}
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.SQLState = string(rest[1:6])
		rest = rest[6:]
	}
	e.Message = string(rest)
	return e
}

// handshake reads the initial handshake v10 and authenticates.
func (c *Conn) handshake(cfg Config) error {
	p, err := c.readPacket()
	if err != nil {
		return fmt.Errorf("read initial handshake: %w", err)
	}
	if len(p) > 0 && p[0] == 0xff {
		return parseErr(p)
	}
	if len(p) < 1 || p[0] != 10 {
		return fmt.Errorf("protocol version %d not supported (want 10)", firstByte(p))
	}
	r := reader{b: p[1:]}
	c.version = r.nulString()
	c.mariaDB = strings.Contains(strings.ToLower(c.version), "mariadb")
	c.connID = r.uint32()
	scramble := append([]byte(nil), r.bytes(8)...)
	r.skip(1)
	caps := uint32(r.uint16())
	r.skip(1 + 2) // charset, status
	caps |= uint32(r.uint16()) << 16
	authLen := int(r.byte1())
	r.skip(10)
	if caps&capSecureConn != 0 {
		n := authLen - 8
		if n < 13 {
			n = 13
		}
		part := r.bytes(n)
		// The second part is NUL-terminated; the scramble is 20 bytes.
		part = bytes.TrimRight(part, "\x00")
		scramble = append(scramble, part...)
	}
	plugin := "mysql_native_password"
	if caps&capPluginAuth != 0 {
		if s := r.nulString(); s != "" {
			plugin = s
		}
	}
	if r.err != nil {
		return fmt.Errorf("parse initial handshake: %w", r.err)
	}
	if caps&capProtocol41 == 0 {
		return errors.New("server does not speak protocol 4.1")
	}
	c.caps = capLongPassword | capLongFlag | capProtocol41 | capTransactions | capSecureConn |
		capMultiResults | capPluginAuth | capPluginAuthLenc
	c.caps &= caps | capLongPassword
	auth, err := scrambleFor(plugin, cfg.Password, scramble)
	if err != nil {
		return err
	}
	var resp []byte
	resp = binary.LittleEndian.AppendUint32(resp, c.caps)
	resp = binary.LittleEndian.AppendUint32(resp, maxPacketPayload)
	resp = append(resp, 45) // utf8mb4_general_ci
	resp = append(resp, make([]byte, 23)...)
	resp = append(resp, cfg.User...)
	resp = append(resp, 0)
	if c.caps&capPluginAuthLenc != 0 {
		resp = appendLenEnc(resp, uint64(len(auth)))
	} else {
		resp = append(resp, byte(len(auth)))
	}
	resp = append(resp, auth...)
	resp = append(resp, plugin...)
	resp = append(resp, 0)
	if err := c.writePacket(resp); err != nil {
		return fmt.Errorf("send handshake response: %w", err)
	}
	return c.authResult(cfg, plugin)
}

func firstByte(p []byte) int {
	if len(p) == 0 {
		return -1
	}
	return int(p[0])
}

// authResult follows the server's answers until OK or ERR.
func (c *Conn) authResult(cfg Config, plugin string) error {
	for {
		p, err := c.readPacket()
		if err != nil {
			return fmt.Errorf("read authentication result: %w", err)
		}
		if len(p) == 0 {
			return errors.New("empty authentication packet")
		}
		switch p[0] {
		case 0x00:
			return nil
		case 0xff:
			return parseErr(p)
		case 0xfe: // auth switch request: plugin name, then the new scramble
			r := reader{b: p[1:]}
			plugin = r.nulString()
			scramble := bytes.TrimRight(r.rest(), "\x00")
			auth, err := scrambleFor(plugin, cfg.Password, scramble)
			if err != nil {
				return err
			}
			if err := c.writePacket(auth); err != nil {
				return fmt.Errorf("send auth switch response: %w", err)
			}
		case 0x01: // more data (caching_sha2_password)
			if plugin != "caching_sha2_password" || len(p) < 2 {
				return fmt.Errorf("%w: unexpected auth-more-data for plugin %s", ErrUnsupportedAuth, plugin)
			}
			switch p[1] {
			case 3: // fast auth success; the OK packet follows
			case 4:
				return fmt.Errorf("%w: caching_sha2_password full authentication needs TLS or the server's RSA key; "+
					"use mysql_native_password for the replication user, or log in once with the mysql client so the server caches the password", ErrUnsupportedAuth)
			default:
				return fmt.Errorf("%w: caching_sha2_password status %d", ErrUnsupportedAuth, p[1])
			}
		default:
			return fmt.Errorf("unexpected authentication packet 0x%02x", p[0])
		}
	}
}

// scrambleFor computes the auth response of a plugin.
func scrambleFor(plugin, password string, scramble []byte) ([]byte, error) {
	if password == "" {
		return nil, nil
	}
	switch plugin {
	case "mysql_native_password":
		return NativePassword(password, scramble), nil
	case "caching_sha2_password":
		return CachingSHA2Password(password, scramble), nil
	}
	return nil, fmt.Errorf("%w: authentication plugin %q; use mysql_native_password for the replication user", ErrUnsupportedAuth, plugin)
}

// NativePassword is SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
func NativePassword(password string, scramble []byte) []byte {
	if len(scramble) > 20 {
		scramble = scramble[:20]
	}
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	h := sha1.New()
	h.Write(scramble)
	h.Write(h2[:])
	h3 := h.Sum(nil)
	for i := range h3 {
		h3[i] ^= h1[i]
	}
	return h3
}

// CachingSHA2Password is SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble).
func CachingSHA2Password(password string, scramble []byte) []byte {
	if len(scramble) > 20 {
		scramble = scramble[:20]
	}
	h1 := sha256.Sum256([]byte(password))
	h2 := sha256.Sum256(h1[:])
	h := sha256.New()
	h.Write(h2[:])
	h.Write(scramble)
	h3 := h.Sum(nil)
	for i := range h3 {
		h3[i] ^= h1[i]
	}
	return h3
}

// exec runs a statement that returns no result set.
func (c *Conn) exec(sql string) error {
	c.seq = 0
	if err := c.writePacket(append([]byte{comQuery}, sql...)); err != nil {
		return fmt.Errorf("send %q: %w", sql, err)
	}
	p, err := c.readPacket()
	if err != nil {
		return fmt.Errorf("read result of %q: %w", sql, err)
	}
	switch firstByte(p) {
	case 0x00:
		return nil
	case 0xff:
		return fmt.Errorf("%s: %w", sql, parseErr(p))
	}
	return fmt.Errorf("%s: unexpected result set", sql)
}

// prepare sets the session variables the dump needs and registers the
// replica.
func (c *Conn) prepare(cfg Config) error {
	stmts := []string{
		// Ask for CRC32 checksums: every event then carries one, verified
		// in Parser.
		"SET @master_binlog_checksum = 'CRC32'",
		fmt.Sprintf("SET @master_heartbeat_period = %d", c.heartbeat.Nanoseconds()),
	}
	if c.mariaDB {
		// Capability 4 (MARIA_SLAVE_CAPABILITY_GTID): send GTID events and
		// annotate events as they are, not rewritten for old replicas.
		stmts = append(stmts, "SET @mariadb_slave_capability = 4")
	}
	for _, s := range stmts {
		if err := c.exec(s); err != nil {
			return fmt.Errorf("prepare replication session: %w", err)
		}
	}
	var p []byte
	p = append(p, comRegisterReplica)
	p = binary.LittleEndian.AppendUint32(p, cfg.ServerID)
	p = append(p, 0) // hostname
	p = append(p, byte(len(cfg.User)))
	p = append(p, cfg.User...)
	p = append(p, 0)                           // password
	p = binary.LittleEndian.AppendUint16(p, 0) // port
	p = binary.LittleEndian.AppendUint32(p, 0) // replication rank
	p = binary.LittleEndian.AppendUint32(p, 0) // master id
	c.seq = 0
	if err := c.writePacket(p); err != nil {
		return fmt.Errorf("register replica: %w", err)
	}
	r, err := c.readPacket()
	if err != nil {
		return fmt.Errorf("register replica: %w", err)
	}
	if firstByte(r) == 0xff {
		return fmt.Errorf("register replica with server id %d: %w", cfg.ServerID, parseErr(r))
	}
	return nil
}

// SetGTIDStart sets the MariaDB GTID position to dump from
// (@slave_connect_state); StartDump must then be called with an empty
// file name and position 4. Only MariaDB supports it.
func (c *Conn) SetGTIDStart(gtids string) error {
	if !c.mariaDB {
		return errors.New("GTID start is only supported on MariaDB")
	}
	if strings.ContainsAny(gtids, "'\\") {
		return fmt.Errorf("invalid GTID list %q", gtids)
	}
	return c.exec(fmt.Sprintf("SET @slave_connect_state = '%s'", gtids))
}

// StartDump sends COM_BINLOG_DUMP for file at pos, as the registered
// replica (a blocking dump: the server waits for new events).
func (c *Conn) StartDump(file string, pos uint32) error {
	var p []byte
	p = append(p, comBinlogDump)
	p = binary.LittleEndian.AppendUint32(p, pos)
	p = binary.LittleEndian.AppendUint16(p, 0) // blocking
	p = binary.LittleEndian.AppendUint32(p, c.serverID)
	p = append(p, file...)
	c.seq = 0
	if err := c.writePacket(p); err != nil {
		return fmt.Errorf("send binlog dump: %w", err)
	}
	c.parser = NewParser()
	return nil
}

// ReadEvent blocks for the next event of the dump. It returns an error
// wrapping *ServerError when the server ends the dump with an error (e.g.
// 1236, the requested log is missing), io.EOF when it ends the dump
// normally, and a network error when the connection drops. If no packet
// (event or heartbeat) arrives for ten heartbeat periods, the connection
// is considered lost.
func (c *Conn) ReadEvent() (*Event, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(10*c.heartbeat + 5*time.Second))
	p, err := c.readPacket()
	if err != nil {
		return nil, fmt.Errorf("read binlog event: %w", err)
	}
	switch firstByte(p) {
	case 0x00:
		return c.parser.Parse(p[1:])
	case 0xff:
		return nil, fmt.Errorf("binlog dump: %w", parseErr(p))
	case 0xfe:
		return nil, io.EOF
	}
	return nil, fmt.Errorf("unexpected binlog packet 0x%02x", firstByte(p))
}

func appendLenEnc(b []byte, n uint64) []byte {
	switch {
	case n < 251:
		return append(b, byte(n))
	case n < 1<<16:
		return append(b, 0xfc, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(b, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	}
	b = append(b, 0xfe)
	return binary.LittleEndian.AppendUint64(b, n)
}
