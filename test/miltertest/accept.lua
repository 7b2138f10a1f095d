-- An authenticated sender with an ordinary message: accepted (CONTINUE), the opaque
-- sender token added, no pool header; then a second message on the same connection
-- after ABORT (Postfix sends ABORT after every transaction).
dofile(scriptdir .. "/common.lua")
local conn = open()
local headers = { { "From", " Alice <alice@example.jp>" }, { "To", " bob@example.com" }, { "Subject", " lunch" } }
check(transaction(conn, "alice@example.jp", "Q1", headers, "See you at noon.\r\n") == SMFIR_CONTINUE, "message 1: not CONTINUE")
check(mt.eom_check(conn, MT_HDRADD, "X-Fumidai-Sender", " " .. token), "message 1: no sender token header")
check(not mt.eom_check(conn, MT_HDRADD, "X-Fumidai-Pool"), "message 1: unexpected pool header")
check(not mt.eom_check(conn, MT_QUARANTINE), "message 1: unexpected quarantine")
check(mt.abort(conn) == nil, "mt.abort() failed")
check(transaction(conn, "alice@example.jp", "Q2", headers, "Second message.\r\n") == SMFIR_CONTINUE, "message 2: not CONTINUE")
check(mt.abort(conn) == nil, "mt.abort() failed")
mt.disconnect(conn)
mt.echo("accept.lua: ok")
