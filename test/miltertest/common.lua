-- Shared steps of the fumidai miltertest scripts (loaded with dofile by each script).
-- Globals from the command line (-D): socket, scriptdir.

function check(cond, msg)
  if not cond then error(msg, 2) end
end

function open()
  local conn = mt.connect(socket, 10, 0.2)
  check(conn ~= nil, "mt.connect() failed")
  mt.set_timeout(10)
  check(mt.negotiate(conn, nil, nil, nil) == nil, "mt.negotiate() failed")
  mt.macro(conn, SMFIC_CONNECT, "j", "mx.fumidai-test.invalid", "{daemon_name}", "ORIGINATING")
  check(mt.conninfo(conn, "client.example.org", "203.0.113.5") == nil, "mt.conninfo() failed")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "connect: unexpected reply")
  check(mt.helo(conn, "client.example.org") == nil, "mt.helo() failed")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "helo: unexpected reply")
  return conn
end

-- connect → helo → mail → rcpt → header → eoh → body → eom, as Postfix orders them.
-- login may be nil (no SMTP AUTH). Returns the reply to EOM.
function transaction(conn, login, qid, headers, body)
  if login ~= nil then
    mt.macro(conn, SMFIC_MAIL, "i", qid, "{auth_authen}", login, "{auth_type}", "PLAIN")
  else
    mt.macro(conn, SMFIC_MAIL, "i", qid)
  end
  check(mt.mailfrom(conn, "<" .. (login or "anonymous@example.jp") .. ">", "SIZE=1000") == nil, "mt.mailfrom() failed")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "mail: unexpected reply")
  mt.macro(conn, SMFIC_RCPT, "i", qid)
  check(mt.rcptto(conn, "<bob@example.com>") == nil, "mt.rcptto() failed")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "rcpt: unexpected reply")
  for _, h in ipairs(headers) do
    check(mt.header(conn, h[1], h[2]) == nil, "mt.header() failed")
    check(mt.getreply(conn) == SMFIR_CONTINUE, "header: unexpected reply")
  end
  check(mt.eoh(conn) == nil, "mt.eoh() failed")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "eoh: unexpected reply")
  check(mt.bodystring(conn, body) == nil, "mt.bodystring() failed")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "body: unexpected reply")
  mt.macro(conn, string.byte("E"), "i", qid) -- SMFIC_BODYEOB (miltertest defines no constant for it)
  check(mt.eom(conn) == nil, "mt.eom() failed")
  return mt.getreply(conn)
end
