// The dashboard page: one self-contained HTML document (no CDN, no build), polling /api/status
// every second and drawing the per-lane series as inline SVG line charts. A lane keeps its colour
// (stable blue, candidate orange, others by a hash of the name); when the controller is gone the
// page keeps its last state and says since when. The shadow section polls /api/shadow (the top
// diverging routes, `flowtag shadow report`'s figures): counts and field paths, never a body.
export const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flowtag canary</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;gap:24px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0}.pill{padding:3px 10px;border-radius:12px;background:#3b4458;font-weight:600}
.pill.promoted{background:#1f8a4c}.pill.rolled-back,.pill.aborted{background:#b3261e}.pill.paused{background:#b26a00}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:16px;padding:16px 20px}
section{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002}
h2{font-size:14px;margin:0 0 8px}svg{width:100%;height:160px;background:#fbfcfd}
table{border-collapse:collapse;width:100%;font-size:12px}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eee}
.legend span{margin-right:12px}.history{max-height:260px;overflow:auto;font-size:12px}
button{font-weight:600;padding:6px 14px;border-radius:6px;border:0;cursor:pointer;margin-right:8px}
#promote{background:#1f8a4c;color:#fff}#abort{background:#b3261e;color:#fff}#pause,#resume{background:#3b4458;color:#fff}#msg{margin-left:8px}
#gone{background:#fff4e5;color:#7a4500;padding:8px 20px;font-weight:600}#gone[hidden]{display:none}
input{padding:5px;width:220px}
#lane{grid-column:1/-1}#lane[hidden]{display:none}.v-pass{color:#1f8a4c;font-weight:600}.v-fail{color:#b3261e;font-weight:600}.v-waiting{color:#b26a00}
tr.failing td{background:#fdecea}.trail{font-family:monospace;letter-spacing:1px}
#shadow{grid-column:1/-1}#shadow td.num{text-align:right;font-variant-numeric:tabular-nums}#shadow code{background:#f1f3f6;padding:0 4px;border-radius:3px;margin-right:6px}
</style></head><body>
<header><h1>flowtag canary — <span id="service">…</span></h1>
<span>state <span id="phase" class="pill">…</span></span><span>step <b id="step">…</b></span>
<span>candidate weight <b id="weight">…</b></span><span>rules <b id="rules">…</b></span>
<span>convergence <b id="convergence">…</b></span></header>
<div id="gone" hidden></div>
<main>
<section id="lane" hidden><h2>Lane <span id="lane-name"></span>: its services, each judged against its stable</h2><table id="lane-services"></table></section>
<section><h2>Share of requests per lane</h2><svg id="chart-share" data-points="0"></svg><div class="legend" id="legend"></div></section>
<section><h2>Error rate per lane (%)</h2><svg id="chart-errors" data-points="0"></svg></section>
<section><h2>p99 latency per lane (ms)</h2><svg id="chart-p99" data-points="0"></svg></section>
<section><h2>Last check</h2><div id="judgement">none yet</div>
<h2 style="margin-top:12px">Control</h2>
<input id="token" type="password" placeholder="token"> <button id="promote">Promote</button><button id="abort">Abort</button><button id="pause">Pause</button><button id="resume">Resume</button><span id="msg"></span></section>
<section><h2>Instances and the rule version they apply</h2><table id="instances"></table></section>
<section><h2>History</h2><div class="history" id="history"></div></section>
<section id="shadow"><h2>Shadow lanes: top diverging routes (pairs compared since each process started)</h2><table id="shadow-routes" data-routes="0"></table><div id="shadow-note">not read yet</div></section>
</main>
<script>
const STABLE='#2f6fde',CANDIDATE='#e8710a',OTHERS=['#1f8a4c','#8e44ad','#00838f','#6d4c41','#c2185b','#546e7a']
let spec={}
// The same lane, the same colour, on every chart and every reload.
const color=l=>{if(l===spec.stable)return STABLE;if(l===spec.candidate)return CANDIDATE;let h=0;for(const c of String(l))h=(h*31+c.charCodeAt(0))>>>0;return OTHERS[h%OTHERS.length]}
const clock=ms=>new Date(ms).toISOString().slice(11,19)
const $=id=>document.getElementById(id)
const esc=s=>String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))
// series: lane -> values; max: the top of the axis (undefined: 110% of the largest value); unit
// labels the y axis; times (ms epoch, one per point) label the x axis. The lines are drawn between
// a top and a bottom band (T, B) that hold the labels, so no line crosses them.
function chart(id,series,max,unit,times){
  const svg=$(id);const W=600,H=160,T=16,B=H-16;svg.setAttribute('viewBox','0 0 '+W+' '+H);svg.setAttribute('preserveAspectRatio','none')
  let top=max;if(top===undefined){top=0;for(const pts of series.values())for(const p of pts)if(p!=null)top=Math.max(top,p);top=top*1.1||1}
  let out='';let n=0
  for(const [lane,pts] of series){n=Math.max(n,pts.length)
    const step=W/Math.max(1,pts.length-1);const d=pts.map((v,i)=>v==null?null:(i*step).toFixed(1)+','+(B-(v/top)*(B-T)).toFixed(1)).filter(Boolean).join(' ')
    out+='<polyline fill="none" stroke-width="2" stroke="'+color(lane)+'" points="'+d+'" data-lane="'+esc(lane)+'"/>'}
  const lab=(x,y,anchor,text,cls)=>'<text class="'+cls+'" x="'+x+'" y="'+y+'" font-size="11" fill="#666" text-anchor="'+anchor+'">'+esc(text)+'</text>'
  out+=lab(4,12,'start',top.toFixed(top<10?2:0)+' '+unit,'y-top')+lab(4,H-3,'start','0 '+unit,'y-zero')
  out+='<line x1="0" y1="'+B+'" x2="'+W+'" y2="'+B+'" stroke="#ddd"/>'
  if(times.length>1)out+=lab(W/2,H-3,'middle',clock(times[0])+' → '+clock(times[times.length-1])+' UTC','x-span')
  svg.innerHTML=out;svg.dataset.points=String(n)
}
let seen=0
async function tick(){
  let s;try{s=await (await fetch('api/status',{cache:'no-store'})).json()}catch{
    // The controller has stopped (the canary ended, the process exited): keep its last state.
    if(seen){$('gone').hidden=false;$('gone').textContent='The controller stopped answering at '+clock(seen)+' UTC: this is its last state.'}
    return}
  seen=Date.now();$('gone').hidden=true
  const st=s.state;spec=st.spec;$('service').textContent=(st.spec.service??'lane '+st.spec.lane)+': '+st.spec.candidate+' vs '+st.spec.stable
  lane(st)
  $('phase').textContent=st.phase;$('phase').className='pill '+st.phase
  $('step').textContent=(st.step+1)+'/'+st.spec.steps.length;$('weight').textContent=st.weight+'%'
  $('rules').textContent=s.rules&&s.rules.version!==undefined?'v'+s.rules.version:'?'
  const c=s.convergence;$('convergence').textContent='rule '+(c.version??'?')+' on '+c.applied+' of '+c.total
  const share=new Map(),err=new Map(),p99=new Map();const names=new Set()
  for(const p of s.series)for(const l of Object.keys(p.lanes))names.add(l)
  for(const l of names){share.set(l,[]);err.set(l,[]);p99.set(l,[])}
  for(const p of s.series){let total=0;for(const l of names)total+=(p.lanes[l]?.requests??0)
    for(const l of names){const v=p.lanes[l];share.get(l).push(total?100*((v?.requests??0)/total):0);err.get(l).push(v&&v.requests?100*v.errorRate:null);p99.get(l).push(v&&v.p99!=null?v.p99*1000:null)}}
  const times=s.series.map(p=>p.at)
  chart('chart-share',share,100,'%',times);chart('chart-errors',err,undefined,'%',times);chart('chart-p99',p99,undefined,'ms',times)
  $('legend').innerHTML=[...names].map(l=>'<span style="color:'+color(l)+'">■ '+esc(l)+'</span>').join('')
  const j=s.judgement;$('judgement').textContent=j?j.verdict+': '+j.reason:'none yet'
  $('instances').innerHTML='<tr><th>service</th><th>instance</th><th>lane</th><th>rule</th></tr>'+c.instances.map(i=>'<tr><td>'+esc(i.service)+'</td><td>'+esc(i.instance)+'</td><td>'+esc(i.lane)+'</td><td>'+esc(i.ruleVersion)+(String(i.ruleVersion)===String(c.version)?' ✓':'')+'</td></tr>').join('')
  $('history').innerHTML=st.history.slice().reverse().map(h=>'<div><b>'+esc(h.at.slice(11,19))+' '+esc(h.event)+'</b> '+esc(h.message)+'</div>').join('')
}
const fig=f=>f?f.requests+' req, errors '+(f.errorRate*100).toFixed(1)+'%, p99 '+esc(f.p99Text):'-'
const MARK={pass:'✓',fail:'✗',waiting:'·'}
// A lane canary: one row per service (kind, verdict, both lanes' figures, warming) and its verdicts
// at the last checks (from the history's per-service data), the failing service marked.
function lane(st){
  const l=st.lane;$('lane').hidden=st.spec.lane==null;if(st.spec.lane==null)return
  $('lane-name').textContent=st.spec.lane+' vs '+st.spec.stable+(l&&l.failing?' — '+l.failing+' failed the lane':'')
  const trail=new Map()
  for(const h of st.history)for(const x of (h.data&&h.data.services)||[]){if(!trail.has(x.service))trail.set(x.service,[]);trail.get(x.service).push(MARK[x.verdict]||'?')}
  $('lane-services').innerHTML='<tr><th>service</th><th>kind</th><th>verdict</th><th>candidate</th><th>stable</th><th>last checks</th><th>why</th></tr>'+((l&&l.services)||[]).map(x=>
    '<tr class="'+(l.failing===x.service?'failing':'')+'" data-service="'+esc(x.service)+'"><td>'+esc(x.service)+'</td><td>'+esc(x.kind)+'</td><td class="v-'+esc(x.verdict)+'">'+esc(x.verdict)+(x.warming?' (warming)':'')+'</td><td>'+fig(x.candidate)+'</td><td>'+fig(x.stable)+'</td><td class="trail">'+esc((trail.get(x.service)||[]).slice(-12).join(''))+'</td><td>'+esc(x.reason)+'</td></tr>').join('')
}
// The mirror lane keeps its colour; the share is of the judged pairs, in %; fields are the JSON
// pointers (or status, header:<name>, body) that differed beyond noise, with the pairs they did in.
async function shadowTick(){
  let r;try{const res=await fetch('api/shadow',{cache:'no-store'});if(!res.ok)throw new Error('HTTP '+res.status);r=await res.json()}catch(e){$('shadow-note').textContent='shadow report not read: '+e.message;return}
  const t=$('shadow-routes');t.dataset.routes=String(r.routes.length)
  t.innerHTML=r.routes.length===0?'':'<tr><th>service</th><th>route</th><th>mirror lane</th><th>pairs compared</th><th>diverging</th><th>learning</th><th>fields that differ (pairs)</th></tr>'+r.routes.map(x=>
    '<tr data-service="'+esc(x.service)+'" data-route="'+esc(x.route)+'" data-lane="'+esc(x.lane)+'"><td>'+esc(x.service)+'</td><td>'+esc(x.route)+'</td><td style="color:'+color(x.lane)+'">■ '+esc(x.lane)+'</td><td class="num compared">'+x.compared+'</td><td class="num share">'+(x.divergence*100).toFixed(1)+' %</td><td class="num">'+x.learning+'</td><td class="fields">'+
    x.fields.map(f=>'<span class="field" data-field="'+esc(f.field)+'" data-count="'+f.count+'"><code>'+esc(f.field)+'</code>'+f.count+'</span>').join(' ')+'</td></tr>').join('')
  $('shadow-note').textContent=(r.routes.length===0?'no shadow pairs compared (no flowtag_shadow_* counters in the metrics read); ':'')+r.read+' of '+r.of+' processes read'+(r.skipped.length?' ('+r.skipped.length+' left out)':'')
}
async function command(name){
  const token=$('token').value;localStorage.setItem('flowtag-token',token)
  const r=await fetch('api/'+name,{method:'POST',headers:{authorization:'Bearer '+token}})
  const b=await r.json();$('msg').textContent=r.ok?name+': '+b.phase:(b.error||r.status);tick()
}
for(const name of ['promote','abort','pause','resume'])$(name).onclick=()=>command(name)
$('token').value=new URLSearchParams(location.hash.slice(1)).get('token')||localStorage.getItem('flowtag-token')||''
tick();setInterval(tick,1000);shadowTick();setInterval(shadowTick,2000)
</script></body></html>
`
