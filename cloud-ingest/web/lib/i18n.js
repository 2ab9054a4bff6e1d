// Words of the dashboard in Simplified Chinese (default) and English. The
// choice is kept in localStorage; `?lang=en` / `?lang=zh` in the address
// sets it too.

const KEY = "riser.lang";

const zh = {
  app: "Riser 消防供水监测",
  "nav.overview": "总览", "nav.buildings": "楼栋", "nav.hazards": "隐患", "nav.statistics": "统计",
  switchLang: "English", logout: "退出", live: "实时", offline: "连接中断", devNoAuth: "开发模式：无登录",
  "login.title": "登录", "login.subtitle": "高层建筑消防供水监测平台", "login.username": "用户名", "login.password": "密码",
  "login.submit": "登录", "login.bad": "用户名或密码错误", "login.limited": "尝试次数过多，请稍后再试", "login.failed": "登录失败：{error}",
  "role.admin": "管理员", "role.fire_rescue": "消防救援", "role.contractor": "维保单位", "role.installer": "安装人员",
  "role.building_manager": "楼栋长", "role.management_unit": "管理单位",
  "status.failing": "不合格", "status.warning": "警告", "status.unknown": "未知", "status.ok": "正常",
  "severity.urgent": "紧急", "severity.general": "一般", "severity.monitoring": "监测中断",
  "state.open": "待确认", "state.acknowledged": "已确认", "state.resolved": "已消除", "state.closed": "已销号",
  "action.opened": "发现", "action.acknowledged": "确认", "action.remark": "备注", "action.resolved": "条件消除",
  "action.reopened": "复发", "action.escalated": "挂牌督办", "action.closed": "销号",
  "quality.good": "正常", "quality.unreachable": "通信中断", "quality.exception": "设备异常应答",
  "quality.sensor_fault": "传感器故障", "quality.stale": "数值冻结",
  "clock.restamped": "已补时间", "clock.jumped": "时钟跳变", "clock.unsynced": "时钟未同步",
  loading: "加载中…", none: "无", all: "全部", total: "合计", error: "出错：{error}", forbidden: "当前账号无权查看此页面",
  notFound: "未找到", updated: "更新于 {time}", prev: "上一页", next: "下一页",
  pageInfo: "第 {from}–{to} 条，共 {total} 条", cancel: "取消", save: "保存", yes: "是", no: "否",
  "overview.title": "消防供水状态总览", "overview.buildings": "楼栋总数", "overview.attention": "需要关注的楼栋",
  "overview.attentionNone": "当前没有不合格或警告的楼栋", "overview.regions": "按区域统计", "overview.region": "区域",
  "overview.count": "楼栋", "overview.expandAll": "全部展开", "overview.collapseAll": "全部收起",
  "col.status": "状态", "col.building": "楼栋", "col.district": "区/县", "col.town": "乡镇/街道", "col.community": "社区",
  "col.contractor": "维保单位", "col.reasons": "原因", "col.updated": "更新时间", "col.address": "地址",
  "buildings.title": "楼栋", "buildings.search": "搜索名称、地址或编号", "buildings.anyDistrict": "全部区县",
  "buildings.anyTown": "全部乡镇/街道", "buildings.anyCommunity": "全部社区", "buildings.anyStatus": "全部状态",
  "buildings.anyContractor": "全部维保单位", "buildings.empty": "没有符合条件的楼栋", "buildings.more": "另有 {n} 项",
  "building.class": "类别", "building.height": "高度", "building.storeys": "层数", "building.gateway": "网关",
  "building.reasons": "当前判定", "building.points": "监测点", "building.point": "点位", "building.value": "当前值",
  "building.required": "要求", "building.clause": "依据", "building.quality": "质量", "building.readAt": "读数时间",
  "building.since": "自 {time}", "building.pending": "待恢复确认", "building.noPoints": "尚未收到任何读数",
  "building.charts": "历史曲线", "building.range24h": "24 小时", "building.range7d": "7 天", "building.range30d": "30 天",
  "building.noHistory": "该时段无数据", "building.hazards": "隐患", "building.openHazards": "未销号",
  "building.pastHazards": "已销号", "building.parties": "责任主体", "building.managementUnit": "管理单位",
  "building.contractor": "维保单位", "building.buildingManager": "楼栋长", "building.noParties": "未提供责任主体信息",
  "building.gatewayHealth": "网关状态", "building.volumeReq": "有效容积 ≥ {v} m³", "building.pressureReq": "≥ {v} MPa",
  "building.effectiveVolume": "有效容积 {v} m³", "building.avg": "平均", "building.min": "最小", "building.max": "最大",
  "building.threshold": "要求值", "building.allHazards": "在隐患页查看", "building.maintenance": "维保模式",
  "maint.start": "进入维保模式", "maint.end": "结束维保模式", "maint.duration": "时长", "maint.note": "说明（可选）",
  "maint.inForce": "维保模式至 {until}（{by}），期间不发送告警", "maint.endedBy": "{by} 提前结束",
  "gw.online": "在线", "gw.offline": "离线", "gw.never": "从未连接", "gw.lastSeen": "最后通信", "gw.software": "软件版本",
  "gw.buffer": "缓存待发", "gw.bufferValue": "{readings} 条读数 · {events} 条事件", "gw.oldest": "最早待发",
  "gw.disk": "缓存占用", "gw.thinned": "已抽稀 / 丢弃", "gw.clock": "时钟", "gw.clockTrusted": "可信",
  "gw.clockUntrusted": "不可信", "gw.clockDetail": "跳变 {jumps} 次 · 暂存 {held} 条", "gw.missing": "缺失消息",
  "gw.uptime": "运行时长", "gw.diskFree": "磁盘剩余", "gw.healthAt": "健康报告时间", "gw.noHealth": "尚无健康报告",
  "hazards.title": "隐患清单", "hazards.anyState": "全部状态", "hazards.notClosed": "未销号",
  "hazards.anySeverity": "全部级别", "hazards.anyBuilding": "全部楼栋", "hazards.anyOverdue": "是否超期", "hazards.overdueOnly": "仅超期",
  "hazards.onTime": "未超期", "hazards.building": "楼栋编号", "hazards.id": "编号", "hazards.severity": "级别",
  "hazards.state": "状态", "hazards.message": "内容", "hazards.opened": "发现时间", "hazards.deadline": "整改期限",
  "hazards.actions": "操作", "hazards.overdue": "已超期", "hazards.escalation1": "督办·未及时确认",
  "hazards.escalation2": "督办·超期", "hazards.acknowledge": "确认", "hazards.remark": "备注", "hazards.close": "销号",
  "hazards.remarkText": "备注内容", "hazards.closeRemark": "销号说明（整改情况）", "hazards.confirmAck": "确认接收此隐患？",
  "hazards.done": "已提交", "hazards.empty": "没有符合条件的隐患", "hazards.trail": "处理记录",
  "hazards.notifications": "通知记录", "hazards.by": "操作人", "hazards.valueReq": "测量 {value} / 要求 {required}",
  "hazards.ackBy": "{by} 于 {time} 确认", "hazards.closedBy": "{by} 于 {time} 销号",
  "stats.title": "统计报表", "stats.month": "月份", "stats.level": "汇总到", "stats.levelTown": "乡镇/街道",
  "stats.levelCommunity": "社区", "stats.exportCsv": "导出 CSV", "stats.exportXlsx": "导出 Excel",
  "stats.inScope": "楼栋总数", "stats.monitored": "已接入监测", "stats.failingNow": "当前不达标",
  "stats.opened": "本月新发现隐患", "stats.rectified": "本月整改销号", "stats.rectifiedSoFar": "累计整改销号", "stats.foundSoFar": "累计发现隐患",
  "stats.asOf": "统计截至 {time}（北京时间）。隐患含紧急、一般两级（不含监测中断）；整改率 = 累计整改销号 / 累计发现隐患。",
  "stats.rate": "整改率", "stats.overdue": "逾期未整改", "stats.empty": "该月无数据",
  "bin.auto": "自动", "bin.manual": "手动", "bin.running": "运行", "bin.stopped": "停止", "bin.fault": "异常",
  "bin.normal": "正常", "bin.alarm": "火警", "bin.on": "动作", "bin.off": "未动作", "building.equipment": "消防泵与火灾报警控制器",
  "party.phone": "电话", "party.email": "邮箱", "party.contact": "联系人", "party.name": "名称", "party.wecom": "企业微信", "party.dingtalk": "钉钉", "party.webhook": "Webhook",
  "unit.h": "{n} 小时", "unit.min": "{n} 分钟", "unit.s": "{n} 秒", "unit.d": "{n} 天",
};

const en = {
  app: "Riser fire water",
  "nav.overview": "Overview", "nav.buildings": "Buildings", "nav.hazards": "Hazards", "nav.statistics": "Statistics",
  switchLang: "中文", logout: "Sign out", live: "Live", offline: "Disconnected", devNoAuth: "dev mode: no sign-in",
  "login.title": "Sign in", "login.subtitle": "Fire water monitoring of high-rise buildings", "login.username": "Username",
  "login.password": "Password", "login.submit": "Sign in", "login.bad": "Wrong username or password",
  "login.limited": "Too many attempts; try again later", "login.failed": "Sign-in failed: {error}",
  "role.admin": "Administrator", "role.fire_rescue": "Fire rescue", "role.contractor": "Contractor", "role.installer": "Installer",
  "role.building_manager": "Building manager", "role.management_unit": "Management unit",
  "status.failing": "Failing", "status.warning": "Warning", "status.unknown": "Unknown", "status.ok": "OK",
  "severity.urgent": "Urgent", "severity.general": "General", "severity.monitoring": "Monitoring lost",
  "state.open": "Open", "state.acknowledged": "Acknowledged", "state.resolved": "Resolved", "state.closed": "Closed",
  "action.opened": "Opened", "action.acknowledged": "Acknowledged", "action.remark": "Remark", "action.resolved": "Resolved",
  "action.reopened": "Reopened", "action.escalated": "Escalated", "action.closed": "Closed",
  "quality.good": "Good", "quality.unreachable": "Unreachable", "quality.exception": "Device exception",
  "quality.sensor_fault": "Sensor fault", "quality.stale": "Stale",
  "clock.restamped": "Restamped", "clock.jumped": "Clock jumped", "clock.unsynced": "Clock unsynced",
  loading: "Loading…", none: "None", all: "All", total: "Total", error: "Error: {error}",
  forbidden: "This account may not see this page", notFound: "Not found", updated: "Updated {time}",
  prev: "Previous", next: "Next", pageInfo: "{from}–{to} of {total}", cancel: "Cancel", save: "Save", yes: "Yes", no: "No",
  "overview.title": "Fire water status", "overview.buildings": "Buildings", "overview.attention": "Buildings needing attention",
  "overview.attentionNone": "No building is failing or in warning", "overview.regions": "By region",
  "overview.region": "Region", "overview.count": "Buildings", "overview.expandAll": "Expand all",
  "overview.collapseAll": "Collapse all",
  "col.status": "Status", "col.building": "Building", "col.district": "District", "col.town": "Town",
  "col.community": "Community", "col.contractor": "Contractor", "col.reasons": "Reasons", "col.updated": "Updated",
  "col.address": "Address",
  "buildings.title": "Buildings", "buildings.search": "Search name, address or id", "buildings.anyDistrict": "All districts",
  "buildings.anyTown": "All towns", "buildings.anyCommunity": "All communities", "buildings.anyStatus": "All statuses",
  "buildings.anyContractor": "All contractors", "buildings.empty": "No building matches", "buildings.more": "{n} more",
  "building.class": "Class", "building.height": "Height", "building.storeys": "Storeys", "building.gateway": "Gateway",
  "building.reasons": "Verdict", "building.points": "Points", "building.point": "Point", "building.value": "Value",
  "building.required": "Required", "building.clause": "Clause", "building.quality": "Quality", "building.readAt": "Read at",
  "building.since": "since {time}", "building.pending": "waiting to clear", "building.noPoints": "No reading received yet",
  "building.charts": "History", "building.range24h": "24 h", "building.range7d": "7 d", "building.range30d": "30 d",
  "building.noHistory": "No data in this range", "building.hazards": "Hazards", "building.openHazards": "Not closed",
  "building.pastHazards": "Closed", "building.parties": "Responsible parties", "building.managementUnit": "Management unit",
  "building.contractor": "Maintenance contractor", "building.buildingManager": "Building manager",
  "building.noParties": "No responsible parties given", "building.gatewayHealth": "Gateway",
  "building.volumeReq": "effective volume ≥ {v} m³", "building.pressureReq": "≥ {v} MPa",
  "building.effectiveVolume": "effective volume {v} m³", "building.avg": "avg", "building.min": "min",
  "building.max": "max", "building.threshold": "required", "building.allHazards": "See on the hazards page",
  "building.maintenance": "Maintenance",
  "maint.start": "Start maintenance", "maint.end": "End maintenance", "maint.duration": "Duration", "maint.note": "Note (optional)",
  "maint.inForce": "In maintenance until {until} ({by}): nobody is paged", "maint.endedBy": "ended early by {by}",
  "class.residential_high_rise_i": "high-rise residential, class I", "class.residential_high_rise_ii": "high-rise residential, class II",
  "class.residential_multi_storey": "multi-storey residential", "class.public_high_rise_i": "high-rise public, class I",
  "class.public_high_rise_ii": "high-rise public, class II", "class.public_multi_storey": "multi-storey public",
  "gw.online": "Online", "gw.offline": "Offline", "gw.never": "Never connected", "gw.lastSeen": "Last seen",
  "gw.software": "Software", "gw.buffer": "Buffered", "gw.bufferValue": "{readings} readings · {events} events",
  "gw.oldest": "Oldest buffered", "gw.disk": "Buffer size", "gw.thinned": "Thinned / dropped", "gw.clock": "Clock",
  "gw.clockTrusted": "trusted", "gw.clockUntrusted": "not trusted", "gw.clockDetail": "{jumps} jumps · {held} held",
  "gw.missing": "Missing messages", "gw.uptime": "Uptime", "gw.diskFree": "Disk free", "gw.healthAt": "Health report",
  "gw.noHealth": "No health report yet",
  "hazards.title": "Hazard items", "hazards.anyState": "All states", "hazards.notClosed": "Not closed",
  "hazards.anySeverity": "All severities", "hazards.anyBuilding": "All buildings", "hazards.anyOverdue": "Overdue or not", "hazards.overdueOnly": "Overdue only",
  "hazards.onTime": "On time", "hazards.building": "Building id", "hazards.id": "No.", "hazards.severity": "Severity",
  "hazards.state": "State", "hazards.message": "Item", "hazards.opened": "Opened", "hazards.deadline": "Deadline",
  "hazards.actions": "Actions", "hazards.overdue": "Overdue", "hazards.escalation1": "Escalated: not acknowledged",
  "hazards.escalation2": "Escalated: overdue", "hazards.acknowledge": "Acknowledge", "hazards.remark": "Remark",
  "hazards.close": "Close", "hazards.remarkText": "Remark", "hazards.closeRemark": "Closing remark (what was fixed)",
  "hazards.confirmAck": "Acknowledge this item?", "hazards.done": "Done", "hazards.empty": "No item matches",
  "hazards.trail": "Trail", "hazards.notifications": "Notifications", "hazards.by": "By",
  "hazards.valueReq": "measured {value} / required {required}", "hazards.ackBy": "acknowledged by {by} at {time}",
  "hazards.closedBy": "closed by {by} at {time}",
  "stats.title": "Statistics", "stats.month": "Month", "stats.level": "By", "stats.levelTown": "Town",
  "stats.levelCommunity": "Community", "stats.exportCsv": "Export CSV", "stats.exportXlsx": "Export Excel",
  "stats.inScope": "Buildings in scope", "stats.monitored": "Monitored", "stats.failingNow": "Failing now",
  "stats.opened": "Hazards found this month", "stats.rectified": "Rectified this month", "stats.rectifiedSoFar": "Rectified so far", "stats.foundSoFar": "Hazards found so far",
  "stats.asOf": "As of {time} (UTC+8). Hazards: urgent and general items (monitoring interruptions left out); rate = rectified so far / found so far.",
  "stats.rate": "Rectification rate", "stats.overdue": "Overdue", "stats.empty": "No data for this month",
  "bin.auto": "auto", "bin.manual": "manual", "bin.running": "running", "bin.stopped": "stopped", "bin.fault": "fault",
  "bin.normal": "normal", "bin.alarm": "FIRE ALARM", "bin.on": "active", "bin.off": "inactive",
  "building.equipment": "Fire pumps and alarm panel",
  "party.phone": "Phone", "party.email": "E-mail", "party.contact": "Contact", "party.name": "Name", "party.wecom": "WeCom", "party.dingtalk": "DingTalk", "party.webhook": "Webhook",
  "unit.h": "{n} h", "unit.min": "{n} min", "unit.s": "{n} s", "unit.d": "{n} d",
};

// Point names the registry gives by default (cloud-ingest/src/registry.rs PointMap).
const points = {
  zh: {
    "tank.level": "高位消防水箱液位", "riser.pressure": "最不利点静压", "hydrant.pressure": "消火栓栓口压力",
    "sprinkler.pressure": "喷淋主管压力", "pumps.fire_running": "消防主泵运行", "pumps.fire_fault": "消防主泵故障",
    "pumps.fire_auto": "消防主泵自动", "pumps.standby_running": "备用泵运行", "pumps.standby_fault": "备用泵故障",
    "pumps.standby_auto": "备用泵自动", "pumps.jockey_fault": "稳压泵故障", "pumps.jockey_auto": "稳压泵自动",
    "pumps.jockey_starts": "稳压泵启动次数", "panel.fire_alarm": "火警", "panel.fault": "控制器故障",
    "panel.disabled": "屏蔽", "panel.mains_fault": "主电故障", "panel.backup_fault": "备电故障",
    "panel.reset": "控制器复位", "panel.supervisory": "监管", "pumps.jockey_running": "稳压泵运行",
    "pool.level": "消防水池液位",
  },
  en: {
    "tank.level": "Rooftop tank level", "riser.pressure": "Static pressure, most unfavourable point",
    "hydrant.pressure": "Hydrant outlet pressure", "sprinkler.pressure": "Sprinkler main pressure",
    "pumps.fire_running": "Fire pump running", "pumps.fire_fault": "Fire pump fault", "pumps.fire_auto": "Fire pump in auto",
    "pumps.standby_running": "Standby pump running", "pumps.standby_fault": "Standby pump fault",
    "pumps.standby_auto": "Standby pump in auto", "pumps.jockey_fault": "Jockey pump fault",
    "pumps.jockey_auto": "Jockey pump in auto", "pumps.jockey_starts": "Jockey pump starts", "panel.fire_alarm": "Fire alarm",
    "panel.fault": "Panel fault", "panel.disabled": "Points disabled", "panel.mains_fault": "Mains power fault",
    "panel.backup_fault": "Backup power fault", "pool.level": "Fire pool level",
    "panel.reset": "Panel reset", "panel.supervisory": "Supervisory", "pumps.jockey_running": "Jockey pump running",
  },
};

const dictionaries = { zh, en };

function initial() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "en" || asked === "zh") {
    try { localStorage.setItem(KEY, asked); } catch { /* private mode */ }
    return asked;
  }
  try { return localStorage.getItem(KEY) === "en" ? "en" : "zh"; } catch { return "zh"; }
}

let current = initial();
document.documentElement.lang = current === "zh" ? "zh-CN" : "en";

/** `zh` or `en`. */
export const lang = () => current;

export function setLang(value) {
  current = value === "en" ? "en" : "zh";
  try { localStorage.setItem(KEY, current); } catch { /* private mode */ }
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
}

/** The words for `key`, with `{name}` replaced from `vars`. */
export function t(key, vars) {
  let s = dictionaries[current][key] ?? zh[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll("{" + k + "}", String(v));
  return s;
}

export const pointLabel = (point) => points[current][point] ?? point;

const timeFormat = {};
/** A time as `2026-11-23 18:05` in China Standard Time (where the buildings are). */
export function fmtTime(value, seconds = false) {
  if (!value) return "—";
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return "—";
  const key = seconds ? "s" : "m";
  timeFormat[key] ??= new Intl.DateTimeFormat("en-CA", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined, hourCycle: "h23",
  });
  return timeFormat[key].format(d).replace(",", "");
}

/** A number with at most `digits` decimals, or a dash. */
export function fmtNum(value, digits = 2) {
  if (value == null || Number.isNaN(value)) return "—";
  return Number(value).toLocaleString(current === "zh" ? "zh-CN" : "en", { maximumFractionDigits: digits });
}

/** A duration in seconds, in its largest whole unit. */
export function fmtDuration(secs) {
  if (secs == null) return "—";
  if (secs >= 86400) return t("unit.d", { n: fmtNum(secs / 86400, 1) });
  if (secs >= 3600) return t("unit.h", { n: fmtNum(secs / 3600, 1) });
  if (secs >= 60) return t("unit.min", { n: Math.round(secs / 60) });
  return t("unit.s", { n: secs });
}

export function fmtBytes(n) {
  if (n == null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return fmtNum(n, i ? 1 : 0) + " " + units[i];
}
