/**
 * haproxy's `show stat` (runtime API CSV) as the HA drills read it: columns by header name, servers and
 * their status. The fixtures are real output, captured in the cairn lab from haproxy 2.6.12-1+deb12u4
 * (Debian 12) with `echo 'show stat' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock` on lb1, running
 * the roles/haproxy configuration (backend web: web1, web2): all UP, then with nginx stopped on web2
 * (DOWN, check_status L4CON: connection refused). The CSV layout is the one HAProxy's management guide
 * documents in section 9.1 "CSV format" (header line starting with "# ", one line per proxy/server).
 */
import { describe, expect, it } from 'vitest';
import { parseShowStat, serverStatuses } from '../../runner/features/drills/ha.js';

const ALL_UP = [
  '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n',
  'stats,FRONTEND,,,1,1,4096,1,283,51817,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,,,0,1,0,0,0,0,,0,1,1,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,1,1,1,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,1,1,288,51851,0,0,\n',
  'www,FRONTEND,,,0,2,4096,11,847,3817,0,0,0,,,,,OPEN,,,,,,,,,1,3,0,,,,0,0,0,3,,,,0,11,0,0,0,0,,0,3,11,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,3,11,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,11,11,814,4004,0,0,\n',
  'web,web1,0,0,0,1,,6,462,2082,,0,,0,0,0,0,UP,1,1,0,0,0,88,0,,1,4,1,,6,,2,0,,2,L7OK,200,0,0,6,0,0,0,0,,,,6,0,0,,,,,44,,,0,0,0,1,,,,Layer7 check passed,,2,2,3,,,,10.77.0.21:80,,http,,,,,,,,0,1,5,,,1,,0,0,0,5,0,0,1,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n',
  'web,web2,0,0,0,1,,5,385,1735,,0,,0,0,0,0,UP,1,1,0,2,1,1,11,,1,4,2,,5,,2,0,,2,L7OK,200,0,0,5,0,0,0,0,,,,5,0,0,,,,,44,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,10.77.0.22:80,,http,,,,,,,,0,1,4,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n',
  'web,BACKEND,0,0,0,1,410,11,847,3817,0,0,,0,0,0,0,UP,2,2,0,,0,88,0,,1,4,0,,11,,1,0,,3,,,,0,11,0,0,0,0,,,,11,0,0,0,0,0,0,44,,,0,0,0,1,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,2,9,0,0,,,0,0,0,5,0,,,,,2,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,178,187,32153,12676,0,0,\n',
].join('');

const WEB2_DOWN = [
  '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,\n',
  'stats,FRONTEND,,,0,0,4096,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,0,0,0,0,0,0,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n',
  'www,FRONTEND,,,0,2,4096,11,847,3817,0,0,0,,,,,OPEN,,,,,,,,,1,3,0,,,,0,0,0,3,,,,0,11,0,0,0,0,,0,3,11,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,3,11,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,11,11,814,4004,0,0,\n',
  'web,web1,0,0,0,1,,6,462,2082,,0,,0,0,0,0,UP,1,1,0,0,0,84,0,,1,4,1,,6,,2,0,,2,L7OK,200,0,0,6,0,0,0,0,,,,6,0,0,,,,,40,,,0,0,0,1,,,,Layer7 check passed,,2,2,3,,,,10.77.0.21:80,,http,,,,,,,,0,1,5,,,1,,0,0,0,5,0,0,1,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n',
  'web,web2,0,0,0,1,,5,385,1735,,0,,0,0,0,0,DOWN,1,1,0,2,1,8,8,,1,4,2,,5,,2,0,,2,L4CON,,0,0,5,0,0,0,0,,,,5,0,0,,,,,40,Connection refused,,0,0,0,0,,,,Layer4 connection problem,,2,2,0,,,,10.77.0.22:80,,http,,,,,,,,0,1,4,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n',
  'web,BACKEND,0,0,0,1,410,11,847,3817,0,0,,0,0,0,0,UP,1,1,0,,0,84,0,,1,4,0,,11,,1,0,,3,,,,0,11,0,0,0,0,,,,11,0,0,0,0,0,0,40,,,0,0,0,1,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,2,9,0,0,,,0,0,0,5,0,,,,,1,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,169,178,30970,12186,0,0,\n',
].join('');

describe('parseShowStat', () => {
  it('keys every row by the header columns, whatever their position', () => {
    const rows = parseShowStat(ALL_UP);
    expect(rows.map((r) => `${r.pxname}/${r.svname}`)).toEqual([
      'stats/FRONTEND',
      'www/FRONTEND',
      'web/web1',
      'web/web2',
      'web/BACKEND',
    ]);
    const web1 = rows[2]!;
    expect(web1.status).toBe('UP');
    expect(web1.check_status).toBe('L7OK');
    expect(web1.check_code).toBe('200');
    expect(web1.addr).toBe('10.77.0.21:80');
    expect(web1.check_desc).toBe('Layer7 check passed');
    // The header ends with a comma and holds a "-" separator column: neither becomes a key.
    expect(Object.keys(web1)).not.toContain('');
    expect(Object.keys(web1)).not.toContain('-');
    expect(rows[4]!.algo).toBe('roundrobin');
  });

  it('reads a DOWN server and why its check failed', () => {
    const web2 = parseShowStat(WEB2_DOWN).find((r) => r.svname === 'web2')!;
    expect(web2.status).toBe('DOWN');
    expect(web2.check_status).toBe('L4CON');
    expect(web2.check_desc).toBe('Layer4 connection problem');
  });

  it('refuses text that is not show stat output', () => {
    expect(() => parseShowStat('Unknown command. Please enter one of the following commands only :\n')).toThrow(
      /no "# pxname/,
    );
    expect(() => parseShowStat('')).toThrow(/not haproxy/);
  });

  it('reads quoted fields with commas and doubled quotes (RFC 4180)', () => {
    const rows = parseShowStat('# pxname,svname,status,check_desc,\nweb,web1,DOWN,"Layer7 wrong status, ""503""",\n');
    expect(rows[0]).toEqual({
      pxname: 'web',
      svname: 'web1',
      status: 'DOWN',
      check_desc: 'Layer7 wrong status, "503"',
    });
  });
});

describe('serverStatuses', () => {
  it('lists the servers only, as backend/server', () => {
    expect([...serverStatuses(parseShowStat(ALL_UP))]).toEqual([
      ['web/web1', 'UP'],
      ['web/web2', 'UP'],
    ]);
    expect(serverStatuses(parseShowStat(WEB2_DOWN)).get('web/web2')).toBe('DOWN');
  });
});
