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

export const AUTH_REQUIRED: ReplyText = {
  ja: '送信にはSMTP認証が必要です。メールソフトの送信サーバ設定で認証を有効にしてください',
  en: 'Authentication required: enable SMTP authentication in your mail program',
};

export const STATE_UNAVAILABLE: ReplyText = {
  ja: '一時的に送信できません。しばらくしてから再送してください',
  en: 'Temporary problem, please try again later',
};
