-- Pipelined requests for wrk, as TechEmpower's pipeline.lua does: each
-- write carries `depth` copies of the request (first script argument,
-- default 16), and wrk counts every response.
--
--   wrk -s bench/lua/pipeline.lua http://127.0.0.1:8080/healthz -- 16

init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end
