-- A verdict naming a pool: the internal pool header is added at end of message (with
-- a leading space: HDR_LEADSPC is negotiated) for Postfix's milter_header_checks.
dofile(scriptdir .. "/common.lua")
local conn = open()
local headers = { { "From", " dave@example.jp" }, { "Subject", " route me" }, { "X-Test-Verdict", " pool=suspect" } }
check(transaction(conn, "dave@example.jp", "Q6", headers, "route me\r\n") == SMFIR_CONTINUE, "pool: not CONTINUE")
check(mt.eom_check(conn, MT_HDRADD, "X-Fumidai-Pool", " suspect"), "pool: no X-Fumidai-Pool: suspect")
check(mt.getheader(conn, "X-Fumidai-Pool", 0) == " suspect", "pool: getheader")
mt.disconnect(conn)
mt.echo("pool.lua: ok")
