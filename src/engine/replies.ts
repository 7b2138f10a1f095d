import type { Language } from '../config/config.ts';
import { formatDuration } from '../config/duration.ts';

// SMTP reply texts a user sees in their mail client's error, Japanese first. The
// languages and their order come from config (replies.languages). Texts stay on one
// line: policy replies and milter REPLYCODE packets cannot carry line breaks.

export interface ReplyText {
  readonly ja: string;
  readonly en: string;
}

export function render(text: ReplyText, languages: readonly Language[]): string {
  return languages.map((l) => text[l]).join(' / ');
}

const SERIES_JA = { messages: '通', recipients: '宛先' } as const;

export function limitReached(series: 'messages' | 'recipients', windowSeconds: number, limit: number): ReplyText {
  const span = formatDuration(windowSeconds);
  return {
    ja: `送信数の上限（${span}あたり${limit}${SERIES_JA[series]}）に達しました。時間をおいて再送してください`,
    en: `Sending limit reached (${limit} ${series} per ${span}); please try again later`,
  };
}

export function suspended(support: string): ReplyText {
  return {
    ja: 'このアカウントからの送信は停止されています。不正利用の可能性があります。サポート窓口にお問い合わせください',
    en: `Sending from this account is suspended because it may be misused; please contact ${support}`,
  };
}

const suspendedTexts = new WeakMap<object, string>();

/** The rendered suspension text for a replies config, built once (a botnet's every RCPT gets it). */
export function suspendedReply(replies: { readonly support: string; readonly languages: readonly Language[] }): string {
  let text = suspendedTexts.get(replies);
  if (text === undefined) suspendedTexts.set(replies, (text = render(suspended(replies.support), replies.languages)));
  return text;
}

export const AUTH_REQUIRED: ReplyText = {
  ja: '送信にはSMTP認証が必要です。メールソフトの送信サーバ設定で認証を有効にしてください',
  en: 'Authentication required: enable SMTP authentication in your mail program',
};

export const STATE_UNAVAILABLE: ReplyText = {
  ja: '一時的に送信できません。しばらくしてから再送してください',
  en: 'Temporary problem, please try again later',
};

// ---- Countermeasure 3: connection source ------------------------------------------------

export function abroadRefused(country: string, portal: string): ReplyText {
  return {
    ja: `海外（${country}）からの送信は許可されていません。海外から送信するには${portal}で「海外からの送信」を有効にしてください`,
    en: `Sending from abroad (${country}) is not enabled for this account; turn on "sending from abroad" in ${portal}`,
  };
}

export function manyCountries(countries: number, windowSeconds: number): ReplyText {
  const span = formatDuration(windowSeconds);
  return {
    ja: `短時間に複数の国（${span}に${countries}か国）からの送信があり、一時的に制限しています。パスワードを変更してください`,
    en: `Sending from ${countries} countries within ${span}: sending is restricted for now; please change your password`,
  };
}

export const SOURCE_LIMIT: ReplyText = {
  ja: '接続元の状況により送信数を一時的に制限しています。時間をおいて再送してください',
  en: 'Sending is limited for now because of where this connection comes from; please try again later',
};

export function impossibleTravel(km: number): ReplyText {
  return {
    ja: `直前の接続元から約${km}kmの場所からの接続です。不正利用の可能性があるため送信を制限しています。パスワードを変更してください`,
    en: `This connection comes from about ${km} km from the previous one, too far for the time between them; please change your password`,
  };
}

export function sourceListed(ip: string): ReplyText {
  return {
    ja: `接続元IPアドレス（${ip}）からの送信は受け付けられません。別のネットワークから送信してください`,
    en: `Sending from your network address ${ip} is not accepted (listed as a source of abuse); please use another network`,
  };
}

// ---- Countermeasure 5: sender spoofing ---------------------------------------------------

export function senderMismatch(address: string, which: 'envelope' | 'header'): ReplyText {
  return {
    ja: `送信者アドレス（${address}）はこのアカウントでは使用できません。ご自身のメールアドレスを差出人にしてください`,
    en: `The ${which === 'envelope' ? 'sender (MAIL FROM)' : 'From header'} address ${address} may not be used with this account; send as one of your own addresses`,
  };
}
