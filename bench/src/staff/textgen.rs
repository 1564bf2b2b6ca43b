//! Realistic ticket text: subjects, bodies, replies and notes in English,
//! German, French, Spanish, Russian, Japanese and Chinese, with a long
//! tail of rare words (product codes, names) so that "rare word" searches
//! find a handful of tickets. Reproducible: a seeded xorshift generator.

// `*rng.pick(..)` picks the `&str` out of a `&&str` for a generic call.
#![allow(clippy::explicit_auto_deref)]

/// xorshift64*: reproducible, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    pub fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// Roughly Zipf: small indexes much more often.
    pub fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) - 1.0) as u64 % n
    }
}

/// A language of the generated text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Fr,
    Es,
    Ru,
    Ja,
    Zh,
}

impl Lang {
    /// English 45%, German 15%, French 12%, Russian 10%, Japanese 8%,
    /// Chinese 7%, Spanish 3%.
    pub fn draw(rng: &mut Rng) -> Self {
        match rng.below(100) {
            0..45 => Lang::En,
            45..60 => Lang::De,
            60..72 => Lang::Fr,
            72..82 => Lang::Ru,
            82..90 => Lang::Ja,
            90..97 => Lang::Zh,
            _ => Lang::Es,
        }
    }

    fn subjects(self) -> &'static [&'static str] {
        match self {
            Lang::En => &[
                "Printer on floor {n} is out of toner",
                "Cannot connect to VPN from home",
                "Password reset for {name}",
                "Laptop screen flickering after update",
                "Email not syncing on my phone",
                "Request: new monitor for desk {n}",
                "Invoice {n} shows the wrong amount",
                "Paper jam in the copier again",
                "Access to shared drive denied",
                "Meeting room projector not working",
                "Software licence renewal for {code}",
                "Wi-Fi drops every few minutes",
                "Order {n} has not arrived",
                "Refund request for order {n}",
                "Cannot log in to the portal",
                "Outlook keeps asking for my password",
            ],
            Lang::De => &[
                "Drucker im {n}. Stock druckt nicht",
                "Kein Zugriff auf das Netzlaufwerk",
                "Passwort zurücksetzen für {name}",
                "Rechnung {n} ist fehlerhaft",
                "Bestellung {n} ist nicht angekommen",
                "VPN-Verbindung bricht ständig ab",
                "Bildschirm flackert nach dem Update",
                "Lizenz für {code} verlängern",
                "Rückerstattung für Bestellung {n}",
                "Anmeldung am Portal schlägt fehl",
            ],
            Lang::Fr => &[
                "L'imprimante du {n}e étage ne fonctionne pas",
                "Impossible de se connecter au VPN",
                "Réinitialisation du mot de passe pour {name}",
                "La facture {n} est incorrecte",
                "Commande {n} non reçue",
                "Écran qui clignote après la mise à jour",
                "Accès refusé au lecteur partagé",
                "Demande de remboursement pour la commande {n}",
                "Renouvellement de licence {code}",
            ],
            Lang::Es => &[
                "La impresora del piso {n} no imprime",
                "No puedo conectarme a la VPN",
                "Factura {n} con importe incorrecto",
                "Pedido {n} no recibido",
                "Restablecer contraseña de {name}",
            ],
            Lang::Ru => &[
                "Принтер на {n} этаже не печатает",
                "Не могу подключиться к VPN",
                "Сброс пароля для {name}",
                "Счёт {n} выставлен неверно",
                "Заказ {n} не доставлен",
                "Мерцает экран ноутбука после обновления",
                "Нет доступа к общей папке",
                "Продление лицензии {code}",
            ],
            Lang::Ja => &[
                "{n}階のプリンターが印刷できません",
                "VPNに接続できません",
                "{name}さんのパスワードリセット",
                "請求書{n}の金額が間違っています",
                "注文{n}がまだ届いていません",
                "アップデート後に画面がちらつきます",
                "共有フォルダにアクセスできません",
            ],
            Lang::Zh => &[
                "{n}楼的打印机无法打印",
                "无法连接VPN",
                "请为{name}重置密码",
                "发票{n}金额错误",
                "订单{n}尚未收到",
                "更新后笔记本屏幕闪烁",
                "无法访问共享文件夹",
            ],
        }
    }

    fn sentences(self) -> &'static [&'static str] {
        match self {
            Lang::En => &[
                "The printer says it is out of toner and nothing prints.",
                "I restarted the computer twice but the problem is still there.",
                "Could you please have a look as soon as possible?",
                "The error message reads: access denied, contact your administrator.",
                "It worked fine until the update yesterday.",
                "Several colleagues on the same floor have the same issue.",
                "Attached is a screenshot of the error.",
                "The VPN client disconnects after a few minutes.",
                "My password expired and the reset link does not work.",
                "The invoice total does not match the purchase order.",
                "Please order a replacement cartridge.",
                "Thanks in advance for your help.",
                "I ordered the item three weeks ago and the tracking page shows nothing.",
                "We need this fixed before the customer meeting on Monday.",
                "Is there a workaround I can use in the meantime?",
                "The laptop gets very hot and the fan is loud.",
            ],
            Lang::De => &[
                "Der Drucker meldet, dass der Toner leer ist, und druckt nichts mehr.",
                "Ich habe den Rechner zweimal neu gestartet, aber der Fehler bleibt.",
                "Könnten Sie sich das bitte so schnell wie möglich ansehen?",
                "Die Fehlermeldung lautet: Zugriff verweigert.",
                "Bis zum gestrigen Update hat alles funktioniert.",
                "Mehrere Kollegen auf dem Stockwerk haben dasselbe Problem.",
                "Im Anhang finden Sie einen Screenshot der Fehlermeldung.",
                "Die Rechnungssumme stimmt nicht mit der Bestellung überein.",
                "Vielen Dank im Voraus für Ihre Hilfe.",
                "Die Lieferung ist seit drei Wochen überfällig.",
            ],
            Lang::Fr => &[
                "L'imprimante indique qu'il n'y a plus de toner et rien ne s'imprime.",
                "J'ai redémarré l'ordinateur deux fois mais le problème persiste.",
                "Pourriez-vous regarder cela dès que possible ?",
                "Le message d'erreur indique : accès refusé.",
                "Tout fonctionnait bien jusqu'à la mise à jour d'hier.",
                "Plusieurs collègues du même étage ont le même problème.",
                "Vous trouverez ci-joint une capture d'écran de l'erreur.",
                "Le montant de la facture ne correspond pas au bon de commande.",
                "Merci d'avance pour votre aide.",
                "Le café de la salle de réunion est en panne.",
            ],
            Lang::Es => &[
                "La impresora dice que no tiene tóner y no imprime nada.",
                "Reinicié el ordenador dos veces pero el problema sigue.",
                "¿Podrían revisarlo lo antes posible?",
                "El importe de la factura no coincide con el pedido.",
                "Gracias de antemano por su ayuda.",
            ],
            Lang::Ru => &[
                "Принтер пишет, что закончился тонер, и ничего не печатает.",
                "Я дважды перезагрузил компьютер, но проблема осталась.",
                "Посмотрите, пожалуйста, как можно скорее.",
                "Сообщение об ошибке: доступ запрещён, обратитесь к администратору.",
                "Всё работало до вчерашнего обновления.",
                "У нескольких коллег на этаже та же проблема.",
                "Прикладываю снимок экрана с ошибкой.",
                "Сумма в счёте не совпадает с заказом.",
                "Заранее спасибо за помощь.",
            ],
            Lang::Ja => &[
                "プリンターのトナーが切れていて、何も印刷できません。",
                "パソコンを二回再起動しましたが、問題は解決しません。",
                "できるだけ早く確認していただけますか。",
                "エラーメッセージには「アクセスが拒否されました」と表示されます。",
                "昨日のアップデートまでは問題なく動いていました。",
                "同じフロアの同僚も同じ問題を抱えています。",
                "エラー画面のスクリーンショットを添付します。",
                "請求書の金額が注文書と一致しません。",
                "よろしくお願いいたします。",
            ],
            Lang::Zh => &[
                "打印机提示碳粉用完了，什么都打印不出来。",
                "我重启了两次电脑，但问题依然存在。",
                "请尽快帮忙看一下。",
                "错误信息显示：访问被拒绝，请联系管理员。",
                "昨天更新之前一切正常。",
                "同一楼层的几位同事也有同样的问题。",
                "附件是错误的截图。",
                "发票金额与采购订单不符。",
                "提前感谢您的帮助。",
            ],
        }
    }

    fn replies(self) -> &'static [&'static str] {
        match self {
            Lang::En | Lang::Es => &[
                "Thank you for reaching out. We have ordered a replacement and will let you know when it arrives.",
                "Could you please send us the exact error message and the time it happened?",
                "We have reset your password; please check your inbox for the link.",
                "A technician will visit your desk this afternoon.",
                "The issue has been fixed on our side. Please try again and tell us if it works.",
                "We have issued a refund; it should appear on your statement within five business days.",
            ],
            Lang::De => &[
                "Vielen Dank für Ihre Nachricht. Wir haben Ersatz bestellt.",
                "Könnten Sie uns bitte die genaue Fehlermeldung schicken?",
                "Ihr Passwort wurde zurückgesetzt; der Link ist unterwegs.",
                "Der Fehler ist behoben. Bitte versuchen Sie es erneut.",
            ],
            Lang::Fr => &[
                "Merci pour votre message. Nous avons commandé un remplacement.",
                "Pourriez-vous nous envoyer le message d'erreur exact ?",
                "Votre mot de passe a été réinitialisé.",
                "Le problème est résolu de notre côté. Merci de réessayer.",
            ],
            Lang::Ru => &[
                "Спасибо за обращение. Мы заказали замену картриджа.",
                "Пришлите, пожалуйста, точный текст ошибки.",
                "Пароль сброшен, ссылка отправлена на вашу почту.",
                "Проблема устранена. Попробуйте ещё раз.",
            ],
            Lang::Ja => &[
                "お問い合わせありがとうございます。交換品を手配しました。",
                "エラーメッセージの全文を送っていただけますか。",
                "パスワードをリセットしました。メールをご確認ください。",
                "問題は解決しました。もう一度お試しください。",
            ],
            Lang::Zh => &[
                "感谢您的来信，我们已经订购了替换件。",
                "请把完整的错误信息发给我们。",
                "您的密码已重置，请查收邮件。",
                "问题已经解决，请再试一次。",
            ],
        }
    }

    fn followups(self) -> &'static [&'static str] {
        match self {
            Lang::En | Lang::Es => &[
                "Thanks, but the problem is back again this morning.",
                "It works now, thank you very much!",
                "Any news on this? It is still not working.",
                "Here is the error message you asked for.",
            ],
            Lang::De => &[
                "Danke, aber der Fehler ist heute Morgen wieder aufgetreten.",
                "Jetzt funktioniert es, vielen Dank!",
                "Gibt es hierzu Neuigkeiten?",
            ],
            Lang::Fr => &[
                "Merci, mais le problème est revenu ce matin.",
                "Cela fonctionne maintenant, merci beaucoup !",
                "Avez-vous des nouvelles ?",
            ],
            Lang::Ru => &[
                "Спасибо, но сегодня утром проблема повторилась.",
                "Теперь всё работает, большое спасибо!",
                "Есть новости по этому вопросу?",
            ],
            Lang::Ja => &[
                "ありがとうございます。ですが、今朝また同じ問題が発生しました。",
                "直りました。ありがとうございました。",
                "その後いかがでしょうか。",
            ],
            Lang::Zh => &[
                "谢谢，但今天早上问题又出现了。",
                "现在可以用了，非常感谢！",
                "请问有进展吗？",
            ],
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Lang::En | Lang::Es => &[
                "Alice Miller",
                "Bob Smith",
                "Carol Jones",
                "David Brown",
                "Emma Wilson",
                "María García",
            ],
            Lang::De => &["Jürgen Müller", "Anna Schmidt", "Lukas Weiß", "Sophie Groß"],
            Lang::Fr => &["Élodie Dubois", "François Lefèvre", "Chloé Martin"],
            Lang::Ru => &["Иван Петров", "Ольга Смирнова", "Дмитрий Иванов"],
            Lang::Ja => &["山田太郎", "佐藤花子", "鈴木一郎"],
            Lang::Zh => &["王伟", "李娜", "张敏"],
        }
    }
}

const NOTES: &[&str] = &[
    "Checked the logs: the toner sensor reports empty although the cartridge is new.",
    "Escalated to the network team; waiting for their answer.",
    "Customer called, wants an update by Friday.",
    "Known issue after the last update, see the internal wiki.",
    "Ordered part from the supplier, delivery in two days.",
    "Intern: Kunde ist verärgert, bitte vorsichtig antworten.",
    "Внутренняя заметка: проверить склад.",
];

/// A pseudo-word vocabulary: product codes and names, a long Zipf tail.
/// `word(i)` for i near 0 is common, for i in the tens of thousands rare.
pub fn word(i: u64) -> String {
    const SYL: &[&str] = &[
        "ka", "lo", "mi", "ren", "tas", "vo", "quin", "der", "sul", "pra", "ne", "gol", "fi",
        "zor", "bel", "tu",
    ];
    let mut w = String::new();
    let mut n = i + 16;
    while n > 0 {
        w.push_str(SYL[(n % 16) as usize]);
        n /= 16;
    }
    w
}

/// How many distinct pseudo-words there are.
pub const VOCABULARY: u64 = 200_000;

fn fill(rng: &mut Rng, template: &str, lang: Lang) -> String {
    template
        .replace("{n}", &(rng.below(900) + 100).to_string())
        .replace("{name}", rng.pick(lang.names()))
        .replace("{code}", &word(rng.zipf(VOCABULARY)).to_uppercase())
}

/// A subject in `lang`.
pub fn subject(rng: &mut Rng, lang: Lang) -> String {
    let t = rng.pick(lang.subjects());
    fill(rng, t, lang)
}

/// A customer's first message: 300–1,500 bytes of sentences, with a few
/// pseudo-words (codes, serial numbers) in between.
pub fn first_body(rng: &mut Rng, lang: Lang, name: &str) -> String {
    let greeting = match lang {
        Lang::En | Lang::Es => "Hello,",
        Lang::De => "Guten Tag,",
        Lang::Fr => "Bonjour,",
        Lang::Ru => "Здравствуйте!",
        Lang::Ja => "お世話になっております。",
        Lang::Zh => "您好，",
    };
    let mut body = format!("{greeting}\n\n");
    let target = 300 + rng.below(1200) as usize;
    while body.len() < target {
        match rng.below(10) {
            0..7 => body.push_str(rng.pick(lang.sentences())),
            _ => {
                let n = 1 + rng.below(3);
                for _ in 0..n {
                    body.push_str(&word(rng.zipf(VOCABULARY)));
                    body.push(' ');
                }
                body.push_str(&format!("#{}", rng.below(1_000_000)));
            }
        }
        body.push(if rng.chance(20) { '\n' } else { ' ' });
    }
    body.push_str(&format!("\n\n{name}"));
    body
}

/// An agent's response.
pub fn reply_body(rng: &mut Rng, lang: Lang, agent: &str) -> String {
    let mut b = String::new();
    for _ in 0..1 + rng.below(3) {
        b.push_str(rng.pick(lang.replies()));
        b.push(' ');
    }
    b.push_str(&format!("\n\n{agent}\nSupport"));
    b
}

/// A customer's follow-up message.
pub fn followup_body(rng: &mut Rng, lang: Lang, name: &str) -> String {
    let mut b = rng.pick(lang.followups()).to_string();
    if rng.chance(40) {
        b.push(' ');
        b.push_str(rng.pick(lang.sentences()));
    }
    b.push_str(&format!("\n\n{name}"));
    b
}

/// An internal note.
pub fn note_body(rng: &mut Rng) -> String {
    let mut b = rng.pick(NOTES).to_string();
    if rng.chance(30) {
        b.push_str(&format!(
            " Ref {}",
            word(rng.zipf(VOCABULARY)).to_uppercase()
        ));
    }
    b
}

/// A customer's name and address.
pub fn customer(rng: &mut Rng, lang: Lang) -> (String, String) {
    let user = rng.zipf(300_000);
    let name = format!("{} {}", rng.pick(lang.names()), user);
    (name, format!("user{user}@example{}.com", user % 97))
}

/// An attachment: a name in the ticket's language and a few KiB of
/// distinct bytes (files are stored once per SHA-256; the disk is shared,
/// so they are small).
pub fn attachment(rng: &mut Rng, lang: Lang) -> (String, &'static str, Vec<u8>) {
    let (name, ctype) = match (lang, rng.below(3)) {
        (Lang::De, 0) => ("rechnung.pdf", "application/pdf"),
        (Lang::Ru, 0) => ("скриншот.png", "image/png"),
        (Lang::Ja, 0) => ("スクリーンショット.png", "image/png"),
        (Lang::Zh, 0) => ("截图.png", "image/png"),
        (Lang::Fr, 0) => ("facture.pdf", "application/pdf"),
        (_, 1) => ("error-log.txt", "text/plain"),
        _ => ("screenshot.png", "image/png"),
    };
    let len = 1024 + rng.below(3072) as usize;
    let mut data = Vec::with_capacity(len + 80);
    while data.len() < len {
        if ctype == "text/plain" {
            // A log: text (the product converts text/* to UTF-8 on intake).
            data.extend_from_slice(
                format!(
                    "2025-03-0{} ERROR {} code={}\n",
                    rng.below(9) + 1,
                    word(rng.zipf(VOCABULARY)),
                    rng.next()
                )
                .as_bytes(),
            );
        } else {
            data.extend_from_slice(&rng.next().to_le_bytes());
        }
    }
    (name.to_string(), ctype, data)
}
