-- tldb database schema: the tables the loader fills.
-- This file is the source of truth for the database layout; datasette_metadata.yml describes
-- every table and column again for Datasette, and a test keeps the two in step.
-- The database is lossless: together, logs, envelopes, payloads, lines and strings hold every
-- byte of every loaded log (tldb can write the original file back from them).

-- Key/value facts about this database: schema_version, tldb_version, load_complete.
CREATE TABLE meta (
    key TEXT PRIMARY KEY,   -- name of the fact
    value TEXT              -- its value, as text
);

-- One row per loaded log file.
CREATE TABLE logs (
    id INTEGER PRIMARY KEY,      -- log number, in load order
    path TEXT NOT NULL,          -- path of the file as given to tldb
    name TEXT NOT NULL,          -- file name without folders
    size INTEGER NOT NULL,       -- size in bytes
    mtime_ns INTEGER,            -- modification time (ns since the epoch) when loaded
    lines INTEGER NOT NULL,      -- physical lines in the file
    eol TEXT NOT NULL,           -- the usual line ending ('\n' or '\r\n'); others are in `lines`
    final_newline INTEGER NOT NULL, -- 1 if the file ends with a line ending
    file_rank INTEGER,           -- rank parsed from a dedicated_log_torch_trace_rank_N file name
    detected_rank INTEGER,       -- rank of the first ranked envelope (tlparse's "Detected rank")
    envelopes INTEGER NOT NULL,  -- number of envelope lines (lines with a glog prefix)
    stats TEXT NOT NULL          -- JSON: tlparse's Stats counters and tldb's own, for this log
);

-- Deduplicated payload texts (the TAB-indented lines after an envelope, TABs removed,
-- joined with '\n', as tlparse reads them).
CREATE TABLE payloads (
    id INTEGER PRIMARY KEY,   -- payload number
    md5 TEXT NOT NULL UNIQUE, -- md5 of the text (hex); compare with envelopes.has_payload
    size INTEGER NOT NULL,    -- length in bytes (UTF-8)
    text TEXT NOT NULL        -- the payload
);

-- One row per envelope line: every line with a glog prefix, in log order, whatever its JSON.
CREATE TABLE envelopes (
    id INTEGER PRIMARY KEY,      -- envelope number, in load order (log order within a log)
    log_id INTEGER NOT NULL REFERENCES logs(id), -- the log it comes from
    line INTEGER NOT NULL,       -- 1-based physical line number in the log
    header TEXT NOT NULL,        -- the raw text before the JSON: anything before the glog prefix, and the prefix
    level TEXT NOT NULL,         -- glog level letter (V, I, W, E, C)
    timestamp TEXT NOT NULL,     -- MM-DDThh:mm:ss.ffffff from the prefix (glog writes no year)
    thread INTEGER,              -- the number after the time (the writer's process id)
    pathname TEXT NOT NULL,      -- source file of the logging call, as written
    lineno INTEGER,              -- source line of the logging call
    status TEXT NOT NULL,        -- ok | other_rank | intern | bad_type | bad_json (what tlparse did with it)
    kind TEXT,                   -- envelope kind: its first key that is not context (dynamo_start, artifact, ...)
    rank INTEGER,                -- the envelope's rank key
    compiled_autograd_id INTEGER, -- compile id part
    frame_id INTEGER,            -- compile id part
    frame_compile_id INTEGER,    -- compile id part
    attempt INTEGER,             -- compile id part (NULL when the log did not say)
    compile_id TEXT,             -- tlparse's compile id label, normalized: [0/0], [0/0_1], [-/-], or unknown
    compile_dir TEXT,            -- tlparse's folder for the envelope's files: -_0_0_0, or unknown_LINE
    metadata TEXT NOT NULL,      -- the JSON text exactly as in the log; query it with ->> or json_extract
    has_payload TEXT,            -- md5 the envelope declares for its payload
    payload_id INTEGER REFERENCES payloads(id), -- the payload, when the envelope has one
    payload_lines INTEGER NOT NULL DEFAULT 0,   -- number of payload lines that followed
    payload_ok INTEGER,          -- 1 if the payload md5 matches has_payload, 0 if not, NULL without payload
    unknown_keys TEXT            -- JSON list of top-level keys tlparse does not model, or NULL
);

-- Physical lines that are not envelopes or need their exact bytes kept: lines without a glog
-- prefix (fail_glog), blank lines, undecodable bytes, unusual line endings.
CREATE TABLE lines (
    log_id INTEGER NOT NULL REFERENCES logs(id), -- the log
    line INTEGER NOT NULL,       -- 1-based physical line number
    kind TEXT NOT NULL,          -- fail_glog | blank | bytes | payload_bytes | eol
    text TEXT,                   -- the line (fail_glog) or the line ending (eol)
    data BLOB,                   -- exact bytes (bytes: one line; payload_bytes: the whole payload)
    PRIMARY KEY (log_id, line, kind)
);

-- The filename interning table: `str` envelopes map an index to a file path, per log.
CREATE TABLE strings (
    log_id INTEGER NOT NULL REFERENCES logs(id), -- the log
    idx INTEGER NOT NULL,        -- the index stack frames use as `filename`
    value TEXT NOT NULL,         -- the file path (the latest definition wins, as in tlparse)
    line INTEGER NOT NULL,       -- line of the defining envelope
    PRIMARY KEY (log_id, idx)
);

-- The numbered compile-directory entries tlparse 0.4.3 makes, one plan per report mode.
CREATE TABLE outputs (
    log_id INTEGER NOT NULL REFERENCES logs(id), -- the log
    mode TEXT NOT NULL,          -- default | export (tlparse numbers the two modes differently)
    number INTEGER NOT NULL,     -- tlparse's global output number
    envelope_id INTEGER NOT NULL REFERENCES envelopes(id), -- the envelope that produced it
    kind TEXT NOT NULL,          -- payload | reformat | file | global | link
    parser TEXT NOT NULL,        -- what made it: the envelope kind, or artifact, graph_dump, ...
    path TEXT,                   -- relative output path (NULL for links)
    path_plain TEXT,             -- path with --plain-text, when it differs
    name TEXT NOT NULL,          -- entry name (the path, or a link's name)
    url TEXT NOT NULL,           -- entry target (the path, or a link's URL)
    suffix TEXT NOT NULL,        -- cache icon from the path: ❌ miss, ✅ hit, ❓ bypass
    compile_id TEXT NOT NULL,    -- compile id label the entry is listed under
    compile_dir TEXT NOT NULL,   -- compile folder of the envelope
    readable_path TEXT,          -- readable page of kernel stack traces ('' when unreadable)
    PRIMARY KEY (log_id, mode, number)
);

-- The fields chromium_spans reads of each accepted chromium_event envelope whose payload is a
-- JSON object of phase B, E or X, read once by the loader (tldb/chromium_fields.py) with
-- json_extract (hence no column types: the values are json_extract's), and each begin's end:
-- the nth B with the nth E of the same name, pid, tid and args.compile_id in the log.
CREATE TABLE chromium_fields (
    envelope_id INTEGER PRIMARY KEY REFERENCES envelopes(id), -- the chromium_event envelope
    name,                        -- $.name
    ph,                          -- $.ph: B, E or X
    cat,                         -- $.cat
    ts,                          -- $.ts (µs)
    dur,                         -- $.dur (µs; X events)
    pid,                         -- $.pid
    tid,                         -- $.tid
    event_compile_id,            -- $.args.compile_id
    end_envelope INTEGER REFERENCES envelopes(id) -- a B's matching E, NULL if none (or not a B)
);

-- The leaves of each accepted dynamo_cpp_guards_str guard tree (`+- TYPE: code` lines), split
-- once by the loader (tldb/guard_leaves.py) for the guards view: the lines above the leaves
-- (GuardManager) only say where values come from.
CREATE TABLE guard_leaves (
    envelope_id INTEGER NOT NULL REFERENCES envelopes(id), -- the guard tree's envelope
    position INTEGER NOT NULL,   -- leaf number in the tree, from 0, in line order
    guard_type TEXT NOT NULL,    -- TYPE: the text before the first colon (capitals)
    code TEXT NOT NULL,          -- the text after it, without surrounding spaces
    depth INTEGER NOT NULL,      -- nesting level: half the line's `| ` indentation
    PRIMARY KEY (envelope_id, position)
);
