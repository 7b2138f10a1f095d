-- Refusals rendered as our own SMTP reply (SMFIR_REPLYCODE): a suspended sender gets
-- 550 5.7.1 with the engine's text; a message without SMTP AUTH gets 530 5.7.0.
dofile(scriptdir .. "/common.lua")
local conn = open()
local headers = { { "From", " " .. suspended }, { "Subject", " hi" } }
check(transaction(conn, suspended, "Q3", headers, "hi\r\n") == SMFIR_REPLYCODE, "suspended: not REPLYCODE")
check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1", suspendedText), "suspended: wrong reply")
check(not mt.eom_check(conn, MT_HDRADD), "suspended: no header may be added to a refused message")
check(mt.abort(conn) == nil, "mt.abort() failed")
check(transaction(conn, nil, "Q4", { { "From", " x@example.jp" } }, "hi\r\n") == SMFIR_REPLYCODE, "unauthenticated: not REPLYCODE")
check(mt.eom_check(conn, MT_SMTPREPLY, "530", "5.7.0", authText), "unauthenticated: wrong reply")
mt.disconnect(conn)
mt.echo("refuse.lua: ok")
