"""Questions written for the bundled sample wiki (bot/sample_wiki): paraphrased answerable ones,
near-miss unanswerable ones (the topic is in the wiki, the answer is not) and off-domain ones."""
import json
A = [
("gpu-cluster-rules","zh","一个人在 A100 分区最多能同时占几张卡？","4 张"),
("gpu-cluster-rules","zh","用 H100 要找谁批准？","林思远"),
("gpu-cluster-rules","zh","debug 分区的任务最长能跑多久？","2 小时"),
("faq","zh","我的训练任务为什么会被系统杀掉？","低于 10%"),
("lora-qlora","zh","QLoRA 比 LoRA 训练慢多少？","20%–40%"),
("lora-qlora","zh","QLoRA 里的双重量化能省多少显存？","0.37 bit"),
("faq","zh","训练数据不到两千条时 LoRA 的秩设多少？","r=8"),
("chunking-strategies","zh","wiki 文档默认按多大的块切分？","512 token"),
("hybrid-search-and-reranking","zh","RRF 融合公式里的常数 k 用多少？","60"),
("api-cost-control","zh","每个项目在网关里默认每月预算是多少？","5,000"),
("api-cost-control","zh","个人开发 key 每个月有多少额度？","¥300"),
("api-cost-control","zh","项目用量到预算的百分之多少会提醒？","80%"),
("data-security-policy","zh","客户对话属于哪一级数据？","L3"),
("data-security-policy","zh","L3 数据可以发给外部大模型吗？","禁止"),
("incident-handling","zh","SEV1 故障要多少分钟内确认？","5 分钟"),
("incident-handling","zh","API key 被提交到代码仓库算几级故障？","SEV2"),
("oncall-rotation","zh","值班每周几交接？","每周一"),
("oncall-rotation","zh","换班要提前几天提交记录？","2 个工作日"),
("model-release-checklist","zh","上线前幻觉率不能超过多少？","3%"),
("model-release-checklist","zh","模型回滚要求多长时间内完成？","10 分钟"),
("llm-app-evaluation","zh","评测集中无答案问题建议占多少比例？","10%–15%"),
("llm-app-evaluation","zh","上线前评测集至少要多少条？","300 条"),
("few-shot-and-chain-of-thought","zh","少样本提示一般放几个示例？","3–5 个"),
("onboarding-guide","zh","入职后几天内要考完数据安全考试？","3 天内"),
("qdrant-vector-database","zh","HNSW 索引的 m 参数默认是多少？","16"),
("qdrant-vector-database","zh","当初向量数据库选型时和哪些产品比较过？","Milvus"),
("finetune-vs-continued-pretraining","zh","继续预训练至少要有多少领域语料？","5 亿 token"),
("finetune-vs-continued-pretraining","zh","CPT 时领域语料和通用语料按什么比例混合？","领域 80%、通用 20%"),
("finetune-vs-continued-pretraining","zh","微调和增量训练有什么区别？","继续预训练主要改变模型"),
("local-deployment","zh","Ollama 的 OpenAI 兼容接口默认用哪个端口？","11434"),
("glossary","zh","天枢集群一共有多少张 H100？","16 张 H100"),
("serving-llms-with-vllm","en","What GPU memory utilization should I set if another process shares the GPU?","0.85"),
("serving-llms-with-vllm","en","What tensor parallel size does the standard vLLM launch use?","--tensor-parallel-size 2"),
("rag-evaluation-metrics","en","Why is hit@5 our main retrieval metric?","hit@5"),
("rag-evaluation-metrics","en","How many questions are in rag-golden-v2?","300 questions"),
("choosing-an-embedding-model","en","Which embedding model is our default?","bge-m3"),
("choosing-an-embedding-model","en","How much storage does a 1024-dimensional float32 vector take?","4 KB"),
("code-review-guidelines-ml","en","How large should a merge request be at most?","400 changed lines"),
("tokenizers-101","en","How big is the Llama 3 vocabulary?","128,256"),
("prompt-injection-defense","en","Which characters does the injection detector flag as suspicious?","zero-width"),
]
NM = [
("zh","V100 显卡每人最多能申请几张？"),
("zh","GPU 集群的机房在哪个城市？"),
("zh","QLoRA 支持 3 bit 量化吗？"),
("zh","PDF 手册切分时怎么处理页眉页脚？"),
("zh","RRF 之后的重排序模型用的是哪个版本号？"),
("zh","gw/premium 背后具体是哪家的模型？"),
("zh","L2 数据可以存在个人电脑上吗？"),
("zh","SEV1 故障的复盘会议在哪个会议室开？"),
("zh","值班补贴是多少钱？"),
("zh","模型发布需要 CTO 签字吗？"),
("zh","hq-bench-v3 的题目是谁标注的？"),
("zh","Qdrant 生产集群用的是哪个版本？"),
("zh","继续预训练用过哪些开源语料？"),
("zh","新人入职时公司发什么型号的笔记本电脑？"),
("zh","Ollama 怎么在 Windows 上安装？"),
("en","What is the vLLM version we run in production?"),
("en","How do we evaluate multi-turn conversations in RAG?"),
("en","What embedding model do we use for images?"),
("en","Who approves merge requests on weekends?"),
("en","How long does the prompt injection classifier take per request?"),
]
OD = [
("zh","公司年假有多少天？"),
("zh","报销打车费需要什么发票？"),
("zh","北京今天的天气怎么样？"),
("zh","孕妇可以喝咖啡吗？"),
("zh","长城有多长？"),
("zh","如何申请公司的停车位？"),
("en","Which diffusion model should I use to generate product images?"),
("en","How do I file my annual tax return?"),
("en","What time does the cafeteria open?"),
("en","Who won the 2018 World Cup?"),
]
with open("questions.jsonl","w") as f:
    for i,(d,l,q,a) in enumerate(A):
        f.write(json.dumps({"id":f"sw-a{i+1:03d}","question":q,"answers":[a],"doc_id":d,"lang":l},ensure_ascii=False)+"\n")
with open("unanswerable.jsonl","w") as f:
    n=0
    for kind,rows in (("near_miss",NM),("off_domain",OD)):
        for l,q in rows:
            n+=1
            f.write(json.dumps({"id":f"sw-u{n:03d}","question":q,"answer":None,"doc_id":None,"lang":l,"kind":kind},ensure_ascii=False)+"\n")
print(len(A), len(NM), len(OD))
