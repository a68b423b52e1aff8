// The event page: the event, its seats, and a guest's registration.
import { config } from "./config.js";
import { request } from "./api.js";

const $ = (id) => document.getElementById(id);

function showError(where, error) {
  $(where).textContent = error.message;
  $(where).dataset.code = error.code ?? "";
  $(where).hidden = false;
}

function when(event) {
  const format = new Intl.DateTimeFormat("zh-CN", {
    timeZone: event.timeZone,
    dateStyle: "long",
    timeStyle: "short",
  });
  return `${format.format(new Date(event.startsAt))} – ${format.format(new Date(event.endsAt))}`;
}

function showSeats(seats) {
  $("seats-left").textContent = String(seats.left);
  $("seats-left").dataset.left = String(seats.left);
  $("capacity").textContent = String(seats.capacity);
}

async function load() {
  const { event } = await request("EventPage", { id: config.event });
  return event;
}

let clientKey = crypto.randomUUID();

async function onRegister(submitted, event) {
  submitted.preventDefault();
  const form = submitted.currentTarget;
  const fields = new FormData(form);
  const status = $("registration-status");
  const input = {
    eventId: config.event,
    partySize: Number(fields.get("partySize") || 1),
    privacyConsent: fields.get("consent") === "on",
    clientKey,
    guest: { name: fields.get("name")?.trim() ?? "", phone: fields.get("phone")?.trim() ?? "" },
    answers: event.questions.map((q) => ({ question: q.key, answer: fields.get(`q-${q.key}`)?.trim() ?? "" }))
      .filter((a) => a.answer),
  };
  form.querySelector("button").disabled = true;
  status.hidden = false;
  status.textContent = "正在提交…";
  delete status.dataset.code;
  try {
    const { register } = await request("RegisterGuest", { input });
    const r = register.registration;
    status.dataset.status = r.status;
    status.dataset.ticket = r.ticketCode;
    status.textContent =
      r.status === "CONFIRMED" ? `报名成功！${r.name}，您的入场码是 ${r.ticketCode}，请在签到时出示。`
      : r.status === "WAITLISTED" ? `名额已满，您在候补名单第 ${r.waitlistPosition} 位，有空位时将自动转为报名成功。`
      : r.status === "PENDING" ? "已提交报名，等待主办方审核。"
      : `报名状态：${r.status}`;
    clientKey = crypto.randomUUID();
    form.reset();
    showSeats((await load()).seats);
  } catch (error) {
    showError("registration-status", error);
  } finally {
    form.querySelector("button").disabled = false;
  }
}

async function main() {
  if (!config.event) {
    showError("page-error", new Error("请在 js/config.js 或地址中给出 event"));
    return;
  }
  let event;
  try {
    event = await load();
  } catch (error) {
    showError("page-error", error);
    return;
  }
  if (!event) {
    showError("page-error", new Error("找不到这个活动"));
    return;
  }
  document.title = event.title;
  $("title").textContent = event.title;
  $("summary").textContent = event.summary;
  $("when").textContent = when(event);
  $("where").textContent = event.venue.space?.name ?? event.venue.address ?? "";
  $("organizer").textContent = event.organizer?.name ?? "";
  showSeats(event.seats);
  const party = $("party-size");
  party.max = String(event.groupLimit);
  const questions = $("questions");
  for (const q of event.questions) {
    const label = document.createElement("label");
    label.textContent = q.prompt;
    const answer = document.createElement("input");
    answer.name = `q-${q.key}`;
    answer.required = q.required;
    label.append(answer);
    questions.append(label);
  }
  $("event").hidden = false;
  $("registration-form").addEventListener("submit", (submitted) => onRegister(submitted, event));
  document.body.dataset.ready = "true";
}

main();
