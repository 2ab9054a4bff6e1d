//! The statistics as files to hand on: CSV (UTF-8 with a byte-order mark,
//! so Excel in China opens it as UTF-8; the header line first, then one
//! line per row and the totals line) and XLSX (a title, the cut-off and
//! scope, the definitions, then the same table; counts as numbers, 整改率
//! as a percentage). Headers are Chinese by default, English with
//! [`Lang::En`]; the place names stay as the registry gives them.

use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook, XlsxError};
use time::macros::format_description;

use super::{CST, Counts, Level, Report, StatsError};
use crate::rules::Lang;

/// A file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    /// ASCII, e.g. `riser-statistics-2026-11.xlsx`.
    pub file_name: String,
    /// In the asked language, e.g. `消防用水统计表-2026-11.xlsx`.
    pub file_name_local: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    District,
    Town,
    Community,
    InScope,
    Monitored,
    FailingNow,
    Opened,
    Rectified,
    FoundSoFar,
    RectifiedSoFar,
    Rate,
    Overdue,
}

const COLUMNS: [Column; 12] = [
    Column::District,
    Column::Town,
    Column::Community,
    Column::InScope,
    Column::Monitored,
    Column::FailingNow,
    Column::Opened,
    Column::Rectified,
    Column::FoundSoFar,
    Column::RectifiedSoFar,
    Column::Rate,
    Column::Overdue,
];

impl Column {
    fn title(self, lang: Lang) -> &'static str {
        use Column::*;
        match (lang, self) {
            (Lang::Zh, District) => "区/县",
            (Lang::Zh, Town) => "乡镇/街道",
            (Lang::Zh, Community) => "社区",
            (Lang::Zh, InScope) => "楼栋总数（栋）",
            (Lang::Zh, Monitored) => "已接入监测（栋）",
            (Lang::Zh, FailingNow) => "当前不达标（栋）",
            (Lang::Zh, Opened) => "本月新发现隐患（项）",
            (Lang::Zh, Rectified) => "本月整改销号（项）",
            (Lang::Zh, FoundSoFar) => "累计发现隐患（项）",
            (Lang::Zh, RectifiedSoFar) => "累计整改销号（项）",
            (Lang::Zh, Rate) => "整改率（%）",
            (Lang::Zh, Overdue) => "逾期未整改（项）",
            (Lang::En, District) => "District",
            (Lang::En, Town) => "Town / subdistrict",
            (Lang::En, Community) => "Community",
            (Lang::En, InScope) => "Buildings in scope",
            (Lang::En, Monitored) => "Monitored",
            (Lang::En, FailingNow) => "Failing now",
            (Lang::En, Opened) => "Hazards found this month",
            (Lang::En, Rectified) => "Rectified this month",
            (Lang::En, FoundSoFar) => "Hazards found so far",
            (Lang::En, RectifiedSoFar) => "Rectified so far",
            (Lang::En, Rate) => "Rectification rate (%)",
            (Lang::En, Overdue) => "Overdue",
        }
    }

    fn is_text(self) -> bool {
        matches!(self, Column::District | Column::Town | Column::Community)
    }
}

/// The columns of `level`: the community column only per community.
fn columns(level: Level) -> Vec<Column> {
    COLUMNS
        .into_iter()
        .filter(|c| level == Level::Community || *c != Column::Community)
        .collect()
}

enum Cell<'a> {
    Text(&'a str),
    Count(u64),
    /// 0 to 1; `None` when nothing was found.
    Rate(Option<f64>),
}

/// One line of the table: where (district, town, community) and its numbers.
struct Line<'a> {
    place: [&'a str; 3],
    counts: Counts,
    rate: Option<f64>,
    total: bool,
}

impl<'a> Line<'a> {
    fn cell(&self, column: Column) -> Cell<'a> {
        let c = &self.counts;
        match column {
            Column::District => Cell::Text(self.place[0]),
            Column::Town => Cell::Text(self.place[1]),
            Column::Community => Cell::Text(self.place[2]),
            Column::InScope => Cell::Count(c.in_scope),
            Column::Monitored => Cell::Count(c.monitored),
            Column::FailingNow => Cell::Count(c.failing_now),
            Column::Opened => Cell::Count(c.opened),
            Column::Rectified => Cell::Count(c.rectified),
            Column::FoundSoFar => Cell::Count(c.found_so_far),
            Column::RectifiedSoFar => Cell::Count(c.rectified_so_far),
            Column::Rate => Cell::Rate(self.rate),
            Column::Overdue => Cell::Count(c.overdue),
        }
    }
}

/// Every row, then the totals line.
fn lines(report: &Report, lang: Lang) -> Vec<Line<'_>> {
    let mut lines: Vec<Line<'_>> = report
        .rows
        .iter()
        .map(|r| Line {
            place: [&r.district, &r.town, r.community.as_deref().unwrap_or("")],
            counts: r.counts,
            rate: r.rate,
            total: false,
        })
        .collect();
    lines.push(Line {
        place: [
            match lang {
                Lang::Zh => "合计",
                Lang::En => "Total",
            },
            "",
            "",
        ],
        counts: report.total.counts,
        rate: report.total.rate,
        total: true,
    });
    lines
}

fn file_names(report: &Report, lang: Lang, ext: &str) -> (String, String) {
    let community = report.level == Level::Community;
    let ascii = format!(
        "riser-statistics-{}{}.{ext}",
        report.month,
        if community { "-community" } else { "" }
    );
    let local = match lang {
        Lang::Zh => format!(
            "消防用水统计表-{}{}.{ext}",
            report.month,
            if community { "-社区" } else { "" }
        ),
        Lang::En => ascii.clone(),
    };
    (ascii, local)
}

/// The report as CSV: a BOM, the header line, the rows, the totals line;
/// 整改率 in percent with one decimal, empty when nothing was found.
pub fn csv(report: &Report, lang: Lang) -> Result<Export, StatsError> {
    let failed = |e: ::csv::Error| StatsError::Export {
        format: "CSV",
        message: e.to_string(),
    };
    let columns = columns(report.level);
    let mut writer = ::csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    writer
        .write_record(columns.iter().map(|c| c.title(lang)))
        .map_err(failed)?;
    for line in lines(report, lang) {
        let record = columns.iter().map(|&c| match line.cell(c) {
            Cell::Text(t) => t.to_owned(),
            Cell::Count(n) => n.to_string(),
            Cell::Rate(Some(r)) => format!("{:.1}", r * 100.0),
            Cell::Rate(None) => String::new(),
        });
        writer.write_record(record).map_err(failed)?;
    }
    let bytes = writer.into_inner().map_err(|e| StatsError::Export {
        format: "CSV",
        message: e.to_string(),
    })?;
    let (file_name, file_name_local) = file_names(report, lang, "csv");
    Ok(Export {
        bytes,
        content_type: "text/csv; charset=utf-8",
        file_name,
        file_name_local,
    })
}

/// The report as an XLSX workbook of one sheet.
pub fn xlsx(report: &Report, lang: Lang) -> Result<Export, StatsError> {
    let bytes = workbook(report, lang).map_err(|e| StatsError::Export {
        format: "XLSX",
        message: e.to_string(),
    })?;
    let (file_name, file_name_local) = file_names(report, lang, "xlsx");
    Ok(Export {
        bytes,
        content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        file_name,
        file_name_local,
    })
}

/// The row of the XLSX header line (0-based), below the title, the
/// cut-off and the definitions; the table follows it.
pub const XLSX_HEADER_ROW: u32 = 3;

fn workbook(report: &Report, lang: Lang) -> Result<Vec<u8>, XlsxError> {
    let columns = columns(report.level);
    let last = u16::try_from(columns.len() - 1).unwrap_or(u16::MAX);
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(match lang {
        Lang::Zh => "统计表",
        Lang::En => "Statistics",
    })?;

    let title = Format::new().set_bold().set_font_size(14);
    let plain = Format::new();
    let header = Format::new()
        .set_bold()
        .set_text_wrap()
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
        .set_border(FormatBorder::Thin);
    let text = Format::new().set_border(FormatBorder::Thin);
    let percent = text.clone().set_num_format("0.0%");
    let (total_text, total_percent) = (text.clone().set_bold(), percent.clone().set_bold());

    let as_of = report
        .as_of
        .to_offset(CST)
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]"))
        .unwrap_or_default();
    let scope: Vec<&str> = [report.district.as_deref(), report.town.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let (heading, cut_off, definitions) = match lang {
        Lang::Zh => (
            format!(
                "高层建筑消防用水监测统计表（{}年{}月）",
                report.month.year,
                u8::from(report.month.month)
            ),
            if scope.is_empty() {
                format!("统计截至 {as_of}（北京时间）")
            } else {
                format!("统计截至 {as_of}（北京时间）；范围：{}", scope.join(" / "))
            },
            "隐患只计紧急、一般两级（不含监测中断）；整改以销号为准；整改率 = 累计整改销号 ÷ 累计发现隐患；已接入监测、当前不达标为导出时的状态。",
        ),
        Lang::En => (
            format!(
                "Fire water of high-rise buildings: statistics for {}",
                report.month
            ),
            if scope.is_empty() {
                format!("As of {as_of} (UTC+8)")
            } else {
                format!("As of {as_of} (UTC+8); scope: {}", scope.join(" / "))
            },
            "Hazards: urgent and general items (monitoring interruptions left out); rectified = closed; rate = rectified so far / found so far; monitored and failing now: at export time.",
        ),
    };
    sheet.merge_range(0, 0, 0, last, &heading, &title)?;
    sheet.merge_range(1, 0, 1, last, &cut_off, &plain)?;
    sheet.merge_range(2, 0, 2, last, definitions, &plain)?;

    for (c, column) in columns.iter().enumerate() {
        let c = u16::try_from(c).unwrap_or(u16::MAX);
        sheet.write_string_with_format(XLSX_HEADER_ROW, c, column.title(lang), &header)?;
        sheet.set_column_width(c, if column.is_text() { 14 } else { 12 })?;
    }
    sheet.set_row_height(XLSX_HEADER_ROW, 36)?;
    for (r, line) in lines(report, lang).iter().enumerate() {
        let row = XLSX_HEADER_ROW + 1 + u32::try_from(r).unwrap_or(u32::MAX - XLSX_HEADER_ROW - 1);
        let (text, percent) = if line.total {
            (&total_text, &total_percent)
        } else {
            (&text, &percent)
        };
        for (c, column) in columns.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            match line.cell(*column) {
                Cell::Text(t) => sheet.write_string_with_format(row, c, t, text)?,
                Cell::Count(n) => sheet.write_number_with_format(row, c, n as f64, text)?,
                Cell::Rate(Some(rate)) => sheet.write_number_with_format(row, c, rate, percent)?,
                Cell::Rate(None) => sheet.write_blank(row, c, percent)?,
            };
        }
    }
    sheet.set_freeze_panes(XLSX_HEADER_ROW + 1, 0)?;
    workbook.save_to_buffer()
}
