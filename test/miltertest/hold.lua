-- A verdict to hold: SMFIR_QUARANTINE (Postfix: hold queue) and then CONTINUE.
dofile(scriptdir .. "/common.lua")
local conn = open()
local headers = { { "From", " carol@example.jp" }, { "Subject", " please hold" }, { "X-Test-Verdict", " hold" } }
check(transaction(conn, "carol@example.jp", "Q5", headers, "hold me\r\n") == SMFIR_CONTINUE, "hold: not CONTINUE")
check(mt.eom_check(conn, MT_QUARANTINE, "fumidai: test/hold"), "hold: no quarantine")
mt.disconnect(conn)
mt.echo("hold.lua: ok")
