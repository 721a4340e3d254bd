-- wrk script for bench/bench_httpd.sh: pipelined requests. Every write sends `depth`
-- GET requests for the URL's path back to back (default 16; `wrk ... -- 8` for 8), and wrk
-- counts each response, so req/s stays comparable with a plain keep-alive run.
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil)
   end
   req = table.concat(r)
end

request = function()
   return req
end
