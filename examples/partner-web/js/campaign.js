// The campaign page: the campaign and its live progress, the donor wall, and a guest's pledge.
import { config } from "./config.js";
import { request, subscribe, yuan } from "./api.js";

const $ = (id) => document.getElementById(id);

const DONOR_STATES = { UPCOMING: "即将开始", COLLECTING: "募集中", GOAL_REACHED: "已达成目标（仍可捐赠）", ENDED: "已结束" };

function showError(where, error) {
  $(where).textContent = error.message;
  $(where).dataset.code = error.code ?? "";
  $(where).hidden = false;
}

function showProgress(progress) {
  const raised = $("raised");
  raised.textContent = yuan(progress.raisedFen);
  raised.dataset.raisedFen = String(progress.raisedFen);
  $("goal").textContent = yuan(progress.goalFen);
  $("donor-count").textContent = String(progress.donorCount);
  $("days-left").textContent = String(progress.daysLeft);
  $("donor-state").textContent = DONOR_STATES[progress.donorState] ?? "";
  $("bar").style.width = `${Math.min(100, progress.percentOfGoal)}%`;
  $("bar").parentElement.setAttribute("aria-valuenow", String(Math.round(progress.percentOfGoal)));
}

async function loadWall() {
  const { campaign } = await request("DonorWall", { id: config.campaign, first: 20 });
  const list = $("wall");
  list.replaceChildren(
    ...campaign.donorWall.edges.map(({ node }) => {
      const item = document.createElement("li");
      const who = document.createElement("strong");
      who.textContent = node.displayName;
      const amount = document.createElement("span");
      amount.className = "amount";
      amount.textContent = yuan(node.amountFen);
      item.append(who, " ", amount);
      if (node.message) {
        const message = document.createElement("q");
        message.textContent = node.message;
        item.append(" ", message);
      }
      return item;
    }),
  );
  list.dataset.count = String(campaign.donorWall.totalCount);
  $("wall-empty").hidden = campaign.donorWall.totalCount > 0;
}

// One client key per pledge being filled in: a resubmission after a network error records the
// pledge once.
let clientKey = crypto.randomUUID();

async function onPledge(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const fields = new FormData(form);
  const status = $("pledge-status");
  const input = {
    campaignId: config.campaign,
    amountFen: Math.round(Number(fields.get("amount")) * 100),
    channel: "ONLINE_PLATFORM",
    donorName: fields.get("name")?.trim() || null,
    displayMode: fields.get("displayMode"),
    message: fields.get("message")?.trim() || null,
    clientKey,
  };
  form.querySelector("button").disabled = true;
  status.hidden = false;
  status.textContent = "正在提交…";
  delete status.dataset.code;
  try {
    const { donate } = await request("Pledge", { input });
    status.textContent = `已登记您的认捐 ${yuan(donate.donation.amountFen)}，基地确认到账后将计入筹款进度。谢谢您！`;
    status.dataset.status = donate.donation.status;
    status.dataset.donationId = donate.donation.id;
    clientKey = crypto.randomUUID();
    form.reset();
  } catch (error) {
    showError("pledge-status", error);
  } finally {
    form.querySelector("button").disabled = false;
  }
}

async function main() {
  if (!config.campaign) {
    showError("page-error", new Error("请在 js/config.js 或地址中给出 campaign"));
    return;
  }
  let campaign;
  try {
    ({ campaign } = await request("CampaignPage", { id: config.campaign }));
  } catch (error) {
    showError("page-error", error);
    return;
  }
  if (!campaign) {
    showError("page-error", new Error("找不到这个项目"));
    return;
  }
  document.title = campaign.title;
  $("title").textContent = campaign.title;
  $("organization").textContent = campaign.organization?.name ?? "";
  $("story").textContent = campaign.story;
  $("qualification").textContent = campaign.fundraisingQualification ?? "";
  $("filing").textContent = campaign.filingNumber ?? "";
  showProgress(campaign.progress);
  $("campaign").hidden = false;
  loadWall().catch((error) => showError("page-error", error));
  subscribe("CampaignProgress", { id: config.campaign }, {
    next: ({ campaignProgress }) => {
      showProgress(campaignProgress.progress);
      loadWall().catch((error) => showError("page-error", error));
    },
    error: (error) => showError("page-error", error),
  });
  $("pledge-form").addEventListener("submit", onPledge);
  document.body.dataset.ready = "true";
}

main();
