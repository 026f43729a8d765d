//! Generator of realistic SPI envelopes (pacs.008, pacs.002, admi.002) for tests, the
//! CLI and benchmarks. The sender is the SPI (`00038166`) and the receiver the given
//! ISPB, as on the outgoing stream. Values are random but plausible (names from small
//! built-in lists, CPFs and CNPJs with valid check digits, SPI-shaped identifiers);
//! reason codes and texts are illustrative, not taken from the BCB catalogue. No
//! XMLDSig `Sgntr` is included. All randomness comes from the caller's `rng`; only the
//! clock is read from the system.

use rand::Rng;
use rand::distributions::Alphanumeric;
use wire::clock::{format_utc_ms, now_ms};

/// ISPB of the SPI, the sender of every outgoing message.
pub const SPI_ISPB: &str = "00038166";

/// Longest `RmtInf/Ustrd` line (SPI limit).
const MAX_USTRD_CHARS: usize = 140;
/// Markup around one extra remittance line.
const USTRD_OVERHEAD: usize = "<Ustrd></Ustrd>".len();

/// The message types the generator can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleKind {
    /// FI to FI customer credit transfer (a Pix payment).
    Pacs008,
    /// FI to FI payment status report.
    Pacs002,
    /// Message reject.
    Admi002,
}

impl SampleKind {
    /// Every kind, in a fixed order.
    pub const ALL: [SampleKind; 3] = [SampleKind::Pacs008, SampleKind::Pacs002, SampleKind::Admi002];

    /// The `AppHdr/MsgDefIdr` of this kind.
    pub fn msg_def_idr(self) -> &'static str {
        match self {
            SampleKind::Pacs008 => "pacs.008.spi.1.14",
            SampleKind::Pacs002 => "pacs.002.spi.1.15",
            SampleKind::Admi002 => "admi.002.spi.1.3",
        }
    }

    /// The `Envelope` default namespace of this kind.
    fn namespace(self) -> &'static str {
        match self {
            SampleKind::Pacs008 => "https://www.bcb.gov.br/pi/pacs.008/1.14",
            SampleKind::Pacs002 => "https://www.bcb.gov.br/pi/pacs.002/1.15",
            SampleKind::Admi002 => "https://www.bcb.gov.br/pi/admi.002/1.3",
        }
    }
}

/// One generated envelope and its identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleMessage {
    /// The complete XML document.
    pub body: String,
    /// `AppHdr/BizMsgIdr`: 32 characters.
    pub biz_msg_idr: String,
    /// `AppHdr/MsgDefIdr`.
    pub msg_def_idr: &'static str,
}

/// A random envelope of `kind` addressed to `to_ispb`.
pub fn sample_message<R: Rng + ?Sized>(kind: SampleKind, to_ispb: &str, rng: &mut R) -> SampleMessage {
    let now = UtcTime::now();
    let document = match kind {
        SampleKind::Pacs008 => Pacs008::random(to_ispb, &now, rng).render(""),
        SampleKind::Pacs002 => pacs002(to_ispb, &now, rng),
        SampleKind::Admi002 => admi002(to_ispb, &now, rng),
    };
    envelope(kind, to_ispb, &now, &document, rng)
}

/// A pacs.008 of about `approx_bytes` (within ±10%), padded with extra remittance
/// lines. Targets below the size of a plain pacs.008 (~1.5 KB) give a plain one.
pub fn sample_of_size<R: Rng + ?Sized>(to_ispb: &str, approx_bytes: usize, rng: &mut R) -> SampleMessage {
    let now = UtcTime::now();
    let pacs = Pacs008::random(to_ispb, &now, rng);
    let biz_msg_idr = message_id('M', SPI_ISPB, &now, rng);
    let plain = envelope_with_id(SampleKind::Pacs008, to_ispb, &now, &pacs.render(""), biz_msg_idr.clone());
    let missing = approx_bytes.saturating_sub(plain.body.len());
    if missing == 0 {
        return plain;
    }
    let padding = remittance_padding(missing, rng);
    envelope_with_id(SampleKind::Pacs008, to_ispb, &now, &pacs.render(&padding), biz_msg_idr)
}

fn envelope<R: Rng + ?Sized>(
    kind: SampleKind,
    to_ispb: &str,
    now: &UtcTime,
    document: &str,
    rng: &mut R,
) -> SampleMessage {
    let biz_msg_idr = message_id('M', SPI_ISPB, now, rng);
    envelope_with_id(kind, to_ispb, now, document, biz_msg_idr)
}

fn envelope_with_id(
    kind: SampleKind,
    to_ispb: &str,
    now: &UtcTime,
    document: &str,
    biz_msg_idr: String,
) -> SampleMessage {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Envelope xmlns=\"{ns}\"><AppHdr>\
         <Fr><FIId><FinInstnId><Othr><Id>{SPI_ISPB}</Id></Othr></FinInstnId></FIId></Fr>\
         <To><FIId><FinInstnId><Othr><Id>{to_ispb}</Id></Othr></FinInstnId></FIId></To>\
         <BizMsgIdr>{biz_msg_idr}</BizMsgIdr><MsgDefIdr>{def}</MsgDefIdr><CreDt>{cre_dt}</CreDt>\
         </AppHdr><Document>{document}</Document></Envelope>\n",
        ns = kind.namespace(),
        def = kind.msg_def_idr(),
        cre_dt = now.iso(),
    );
    SampleMessage { body, biz_msg_idr, msg_def_idr: kind.msg_def_idr() }
}

/// The random values of one pacs.008, so it can be rendered with different padding.
struct Pacs008 {
    msg_id: String,
    end_to_end_id: String,
    created: String,
    amount: String,
    local_instrument: &'static str,
    debtor: Party,
    debtor_account: Account,
    debtor_ispb: &'static str,
    creditor: Party,
    creditor_account: Account,
    creditor_ispb: String,
    proxy: String,
    remittance: String,
}

impl Pacs008 {
    fn random<R: Rng + ?Sized>(to_ispb: &str, now: &UtcTime, rng: &mut R) -> Self {
        let debtor_ispb = pick(rng, PSP_ISPBS);
        let creditor = Party::random(rng);
        let proxy = match rng.gen_range(0..3) {
            0 => creditor.id.clone(),
            1 => format!("+55{}9{}", rng.gen_range(11..=99), digits(rng, 8)),
            _ => evp_key(rng),
        };
        Pacs008 {
            msg_id: message_id('M', debtor_ispb, now, rng),
            end_to_end_id: message_id('E', debtor_ispb, now, rng),
            created: now.iso(),
            amount: brl(rng.gen_range(1..=2_500_000)),
            local_instrument: pick(rng, &["MANU", "DICT", "QRDN", "QRES", "INIC"]),
            debtor: Party::random(rng),
            debtor_account: Account::random(rng),
            debtor_ispb,
            creditor,
            creditor_account: Account::random(rng),
            creditor_ispb: to_ispb.to_string(),
            proxy,
            remittance: remittance_line(rng),
        }
    }

    /// The `Document` content; `padding` is inserted as extra remittance lines.
    fn render(&self, padding: &str) -> String {
        format!(
            "<FIToFICstmrCdtTrf><GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>{created}</CreDtTm>\
             <NbOfTxs>1</NbOfTxs><SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf><PmtTpInf>\
             <InstrPrty>HIGH</InstrPrty><SvcLvl><Prtry>PAGPRI</Prtry></SvcLvl></PmtTpInf>\
             </GrpHdr><CdtTrfTxInf><PmtId><EndToEndId>{e2e}</EndToEndId></PmtId>\
             <IntrBkSttlmAmt Ccy=\"BRL\">{amount}</IntrBkSttlmAmt><AccptncDtTm>{created}\
             </AccptncDtTm><ChrgBr>SLEV</ChrgBr><MndtRltdInf><Tp><LclInstrm><Prtry>{li}</Prtry>\
             </LclInstrm></Tp></MndtRltdInf><Dbtr>{debtor}</Dbtr><DbtrAcct>{debtor_acct}</DbtrAcct>\
             <DbtrAgt><FinInstnId><ClrSysMmbId><MmbId>{debtor_ispb}</MmbId></ClrSysMmbId>\
             </FinInstnId></DbtrAgt><CdtrAgt><FinInstnId><ClrSysMmbId><MmbId>{creditor_ispb}\
             </MmbId></ClrSysMmbId></FinInstnId></CdtrAgt><Cdtr>{creditor}</Cdtr><CdtrAcct>\
             {creditor_acct}<Prxy><Id>{proxy}</Id></Prxy></CdtrAcct><Purp><Cd>IPAY</Cd></Purp>\
             <RmtInf><Ustrd>{remittance}</Ustrd>{padding}</RmtInf></CdtTrfTxInf>\
             </FIToFICstmrCdtTrf>",
            msg_id = self.msg_id,
            created = self.created,
            e2e = self.end_to_end_id,
            amount = self.amount,
            li = self.local_instrument,
            debtor = self.debtor.render(),
            debtor_acct = self.debtor_account.render(),
            debtor_ispb = self.debtor_ispb,
            creditor_ispb = self.creditor_ispb,
            creditor = self.creditor.render(),
            creditor_acct = self.creditor_account.render(),
            proxy = self.proxy,
            remittance = self.remittance,
        )
    }
}

fn pacs002<R: Rng + ?Sized>(to_ispb: &str, now: &UtcTime, rng: &mut R) -> String {
    let mut txs = String::new();
    for _ in 0..rng.gen_range(1..=3) {
        let status = pick(rng, &["ACSP", "ACCC", "RJCT"]);
        let detail = if status == "RJCT" {
            let (code, text) = pick_pair(rng, REJECT_REASONS);
            format!("<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn><AddtlInf>{text}</AddtlInf></StsRsnInf>")
        } else {
            format!("<FctvIntrBkSttlmDt><DtTm>{}</DtTm></FctvIntrBkSttlmDt>", now.iso())
        };
        txs.push_str(&format!(
            "<TxInfAndSts><OrgnlInstrId>{instr}</OrgnlInstrId><OrgnlEndToEndId>{e2e}\
             </OrgnlEndToEndId><TxSts>{status}</TxSts>{detail}</TxInfAndSts>",
            instr = message_id('E', to_ispb, now, rng),
            e2e = message_id('E', to_ispb, now, rng),
        ));
    }
    format!(
        "<FIToFIPmtStsRpt><GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>\
         <OrgnlGrpInfAndSts><OrgnlMsgId>{orig}</OrgnlMsgId><OrgnlMsgNmId>pacs.008.spi.1.14\
         </OrgnlMsgNmId></OrgnlGrpInfAndSts>{txs}</FIToFIPmtStsRpt>",
        msg_id = message_id('M', SPI_ISPB, now, rng),
        created = now.iso(),
        orig = message_id('M', to_ispb, now, rng),
    )
}

/// ISO 20022 names the admi.002 `Document` child after the message (`admi.002.001.01`).
fn admi002<R: Rng + ?Sized>(to_ispb: &str, now: &UtcTime, rng: &mut R) -> String {
    let (code, text) = pick_pair(rng, MESSAGE_REJECT_REASONS);
    format!(
        "<admi.002.001.01><RltdRef><Ref>{reference}</Ref></RltdRef><Rsn><RjctgPtyRsn>{code}\
         </RjctgPtyRsn><RjctnDtTm>{at}</RjctnDtTm><RsnDesc>{text}</RsnDesc></Rsn>\
         </admi.002.001.01>",
        reference = message_id('M', to_ispb, now, rng),
        at = now.iso(),
    )
}

/// A debtor or creditor: a person with a CPF or a company with a CNPJ.
struct Party {
    name: String,
    id: String,
    company: bool,
}

impl Party {
    fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        if rng.gen_range(0..4) == 0 {
            Party { name: pick(rng, COMPANIES).to_string(), id: cnpj(rng), company: true }
        } else {
            let name = format!("{} {} {}", pick(rng, FIRST_NAMES), pick(rng, SURNAMES), pick(rng, SURNAMES));
            Party { name, id: cpf(rng), company: false }
        }
    }

    fn render(&self) -> String {
        let kind = if self.company { "OrgId" } else { "PrvtId" };
        format!("<Nm>{}</Nm><Id><{kind}><Othr><Id>{}</Id></Othr></{kind}></Id>", self.name, self.id)
    }
}

/// A branch (`Issr`), account number and account type.
struct Account {
    branch: String,
    number: String,
    kind: &'static str,
}

impl Account {
    fn random<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let len = rng.gen_range(6..=12);
        Account {
            branch: digits(rng, 4),
            number: digits(rng, len),
            kind: pick(rng, &["CACC", "CACC", "SVGS", "TRAN", "SLRY"]),
        }
    }

    fn render(&self) -> String {
        format!(
            "<Id><Othr><Id>{}</Id><Issr>{}</Issr></Othr></Id><Tp><Cd>{}</Cd></Tp>",
            self.number, self.branch, self.kind
        )
    }
}

/// Extra `<Ustrd>` lines totalling about `bytes` bytes (short by at most a line's
/// markup plus a split character).
fn remittance_padding<R: Rng + ?Sized>(bytes: usize, rng: &mut R) -> String {
    let mut out = String::with_capacity(bytes);
    while bytes - out.len() > USTRD_OVERHEAD {
        let room = (bytes - out.len() - USTRD_OVERHEAD).min(MAX_USTRD_CHARS);
        let mut line = String::new();
        while line.len() < room {
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(&remittance_line(rng));
        }
        let mut cut = room;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        out.push_str("<Ustrd>");
        out.push_str(&line);
        out.push_str("</Ustrd>");
    }
    out
}

fn remittance_line<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!("{} {}", pick(rng, REMITTANCE_TEXTS), rng.gen_range(1000..1_000_000))
}

/// `{prefix}{ispb}{yyyyMMddHHmm}{11 alphanumerics}`: 32 characters for an 8-char ISPB.
fn message_id<R: Rng + ?Sized>(prefix: char, ispb: &str, now: &UtcTime, rng: &mut R) -> String {
    let mut id = format!("{prefix}{ispb}{}", now.compact_minute());
    id.extend((0..11).map(|_| char::from(rng.sample(Alphanumeric))));
    id
}

/// An EVP (random) Pix key: a lowercase UUID v4.
fn evp_key<R: Rng + ?Sized>(rng: &mut R) -> String {
    let version_bits = 0xF000_u128 << 64;
    let variant_bits = 0xC_u128 << 60;
    let random: u128 = rng.r#gen();
    let v = random & !version_bits & !variant_bits | (0x4000_u128 << 64) | (0x8_u128 << 60);
    let hex = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn brl(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn digits<R: Rng + ?Sized>(rng: &mut R, n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

/// A CPF (11 digits) with valid check digits.
fn cpf<R: Rng + ?Sized>(rng: &mut R) -> String {
    with_cpf_check_digits((0..9).map(|_| rng.gen_range(0..10)).collect())
}

/// Appends the two CPF check digits to 9 base digits.
fn with_cpf_check_digits(mut d: Vec<u32>) -> String {
    for len in [9u32, 10] {
        let sum: u32 = d.iter().zip((2..=len + 1).rev()).map(|(x, w)| x * w).sum();
        d.push(sum * 10 % 11 % 10);
    }
    d.iter().map(|x| x.to_string()).collect()
}

/// A CNPJ (14 digits, headquarters `0001`) with valid check digits.
fn cnpj<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut d: Vec<u32> = (0..8).map(|_| rng.gen_range(0..10)).collect();
    d.extend([0, 0, 0, 1]);
    with_cnpj_check_digits(d)
}

/// Appends the two CNPJ check digits to 12 base digits.
fn with_cnpj_check_digits(mut d: Vec<u32>) -> String {
    const WEIGHTS: [u32; 13] = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
    for weights in [&WEIGHTS[1..], &WEIGHTS[..]] {
        let sum: u32 = d.iter().zip(weights).map(|(x, w)| x * w).sum();
        let r = sum % 11;
        d.push(if r < 2 { 0 } else { 11 - r });
    }
    d.iter().map(|x| x.to_string()).collect()
}

fn pick<R: Rng + ?Sized>(rng: &mut R, list: &[&'static str]) -> &'static str {
    list[rng.gen_range(0..list.len())]
}

fn pick_pair<R: Rng + ?Sized>(rng: &mut R, list: &[(&'static str, &'static str)]) -> (&'static str, &'static str) {
    list[rng.gen_range(0..list.len())]
}

/// Public ISPBs of large PSPs, used as payer institutions.
const PSP_ISPBS: &[&str] =
    &["00000000", "00360305", "60701190", "60746948", "90400888", "18236120", "10573521", "22896431"];
const FIRST_NAMES: &[&str] = &[
    "Maria",
    "João",
    "Ana",
    "José",
    "Francisca",
    "Antônio",
    "Juliana",
    "Carlos",
    "Fernanda",
    "Lucas",
    "Beatriz",
    "Rafael",
    "Conceição",
    "Paulo",
    "Letícia",
    "Gabriel",
];
const SURNAMES: &[&str] = &[
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Araújo",
    "Ribeiro",
    "Carvalho",
    "Simões",
    "Magalhães",
    "Assunção",
];
const COMPANIES: &[&str] = &[
    "Padaria Pão Quente Ltda",
    "Souza &amp; Filhos Comércio de Alimentos Ltda",
    "Mercado Boa Vista ME",
    "Farmácia Saúde Popular Ltda",
    "Auto Peças Avenida S.A.",
    "Construtora Horizonte Ltda",
];
const REMITTANCE_TEXTS: &[&str] = &[
    "Pagamento referente à nota fiscal",
    "Parcela do contrato",
    "Aluguel do mês, recibo",
    "Reembolso de despesas, protocolo",
    "Mensalidade escolar, matrícula",
    "Serviços de manutenção, ordem",
    "Compra no cartão presente, pedido",
    "Condomínio unidade",
];
const REJECT_REASONS: &[(&str, &str)] = &[
    ("AC03", "Conta do recebedor inexistente ou inválida"),
    ("AC06", "Conta do recebedor bloqueada"),
    ("AM02", "Valor acima do limite da transação"),
    ("AB03", "Tempo de liquidação excedido"),
    ("BE01", "CPF/CNPJ não corresponde ao titular da conta"),
];
const MESSAGE_REJECT_REASONS: &[(&str, &str)] = &[
    ("SCHM", "Mensagem não conforme ao schema XML do catálogo"),
    ("SGNT", "Assinatura digital inválida"),
    ("DUPL", "BizMsgIdr já recebido anteriormente"),
    ("ISPB", "ISPB do remetente não corresponde ao certificado"),
];

/// The instant a message is generated at, as the texts its timestamps use.
struct UtcTime {
    /// `yyyy-MM-ddTHH:mm:ss.sssZ`, as `wire::clock` formats it.
    iso: String,
}

impl UtcTime {
    fn now() -> Self {
        Self::from_ms(now_ms())
    }

    fn from_ms(ms: u64) -> Self {
        UtcTime { iso: format_utc_ms(ms) }
    }

    /// `yyyy-MM-ddTHH:mm:ss.sssZ`
    fn iso(&self) -> String {
        self.iso.clone()
    }

    /// `yyyyMMddHHmm`: the first twelve digits of the ISO form.
    fn compact_minute(&self) -> String {
        self.iso.chars().filter(char::is_ascii_digit).take(12).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const TO: &str = "32074986";

    #[test]
    fn same_seed_same_content_modulo_clock() {
        let a = sample_message(SampleKind::Pacs008, TO, &mut StdRng::seed_from_u64(3));
        let b = sample_message(SampleKind::Pacs008, TO, &mut StdRng::seed_from_u64(3));
        assert_eq!(a.body.len(), b.body.len());
        assert_eq!(a.biz_msg_idr[21..], b.biz_msg_idr[21..]);
    }

    #[test]
    fn end_to_end_id_has_spi_shape() {
        let m = sample_message(SampleKind::Pacs008, TO, &mut StdRng::seed_from_u64(4));
        let start = m.body.find("<EndToEndId>").expect("e2e") + "<EndToEndId>".len();
        let e2e = &m.body[start..start + 32];
        assert!(e2e.starts_with('E') && e2e.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(m.body.contains("Ccy=\"BRL\""));
    }

    #[test]
    fn check_digits_match_known_documents() {
        let base = |s: &str| s.bytes().map(|b| u32::from(b - b'0')).collect::<Vec<_>>();
        assert_eq!(with_cpf_check_digits(base("529982247")), "52998224725");
        assert_eq!(with_cpf_check_digits(base("111444777")), "11144477735");
        assert_eq!(with_cnpj_check_digits(base("112223330001")), "11222333000181");
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..100 {
            let c = cpf(&mut rng);
            assert_eq!(with_cpf_check_digits(base(&c[..9])), c);
            let c = cnpj(&mut rng);
            assert_eq!((c.len(), &c[8..12]), (14, "0001"));
        }
    }

    #[test]
    fn evp_key_is_a_uuid_v4() {
        let key = evp_key(&mut StdRng::seed_from_u64(6));
        assert_eq!(key.len(), 36);
        assert_eq!(&key[14..15], "4");
        assert!(matches!(&key[19..20], "8" | "9" | "a" | "b"), "{key}");
    }

    #[test]
    fn timestamps_come_from_the_wire_clock() {
        let t = UtcTime::from_ms((20_784 * 86_400 + 8 * 3600 + 18 * 60 + 5) * 1000 + 42);
        assert_eq!(t.iso(), "2026-11-27T08:18:05.042Z");
        assert_eq!(t.compact_minute(), "202611270818");
    }
}
