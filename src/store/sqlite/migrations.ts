// Versioned schema of the embedded record store. Append new steps; never edit old ones.
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    sender TEXT PRIMARY KEY,
    settings TEXT NOT NULL
  );
  CREATE TABLE suspensions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    at INTEGER NOT NULL,
    by TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    figures TEXT NOT NULL,
    auto_release_at INTEGER,
    released_at INTEGER,
    released_by TEXT
  );
  CREATE INDEX suspensions_sender ON suspensions (sender, id);
  CREATE INDEX suspensions_open ON suspensions (released_at) WHERE released_at IS NULL;
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    t INTEGER NOT NULL,
    sender TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
  );
  CREATE INDEX audit_sender ON audit (sender, id);
  CREATE TABLE notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    t INTEGER NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    delivered_at INTEGER
  );
  CREATE INDEX notices_sender ON notices (sender, id);
  CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    t INTEGER NOT NULL,
    sender TEXT NOT NULL,
    ip TEXT,
    stage TEXT NOT NULL,
    action TEXT NOT NULL,
    code INTEGER,
    detail TEXT NOT NULL
  );
  CREATE INDEX decisions_sender ON decisions (sender, t);
  CREATE INDEX decisions_t ON decisions (t);
  CREATE TABLE blobs (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
  );
  `,
  // Countermeasure 2: consents to pool routing, one row per consent given (docs/pools.md).
  `
  CREATE TABLE pool_consents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    at INTEGER NOT NULL,
    version INTEGER NOT NULL,
    via TEXT NOT NULL
  );
  CREATE INDEX pool_consents_sender ON pool_consents (sender, id);
  `,
];
